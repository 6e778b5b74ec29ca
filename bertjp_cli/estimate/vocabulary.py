"""The vocabulary and tokenizer settings pretraining-data is measured with.

``--vocab`` is read with the project's one vocabulary reader, and the tokenizer
settings come from the directory's ``tokenizer_config.json`` when there is one,
as ``bertjp pretraining-data`` takes them (a ``--subword`` that contradicts the
file is an error). Without ``--vocab``, the character vocabulary.
"""

from __future__ import annotations

import dataclasses
import posixpath

from bertjp.vocab_files import (
    TOKENIZER_CONFIG,
    TokenizerSettings,
    character_vocab,
    read_tokenizer_config,
    read_vocab,
    resolve_settings,
    vocab_file_path,
)

__all__ = ["Vocabulary", "load_vocabulary"]

_CHARACTER_NOTE = (
    "no --vocab: pretraining-data was measured with the character vocabulary (special "
    "tokens + the 7,012 unidic-lite characters); pass --vocab DIR for a WordPiece "
    "vocabulary (fewer tokens per character, fewer instances)")


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """A vocabulary and how its text is tokenized.

    Attributes:
      tokens: the tokens, in id order.
      settings: subword type, lowercasing and MeCab dictionary.
      source: the ``tokenizer_config.json`` the settings came from, if any.
      notes: what the report should say about the choice.
    """

    tokens: tuple[str, ...]
    settings: TokenizerSettings
    source: str | None = None
    notes: tuple[str, ...] = ()


def _stated_settings(vocab_path: str) -> tuple[TokenizerSettings | None, str | None]:
    """What the ``tokenizer_config.json`` beside ``vocab_path`` states, and its path.

    ``(None, None)`` when there is none.
    """
    from apache_beam.io.filesystems import FileSystems

    source = posixpath.join(posixpath.dirname(vocab_path), TOKENIZER_CONFIG)
    if not FileSystems.exists(source):
        return None, None
    with FileSystems.open(source) as f:
        return read_tokenizer_config(f.read(), source), source


def load_vocabulary(vocab: str | None, subword: str | None) -> Vocabulary:
    """The vocabulary of ``--vocab`` with its settings.

    ``--vocab`` is a tokenizer directory or its ``vocab.txt``; without it, the
    character vocabulary.

    Args:
      vocab: ``--vocab``, local or ``gs://``.
      subword: ``--subword``; ``None`` when not given.

    Raises:
      FileNotFoundError: no vocabulary file.
      ValueError: ``--subword wordpiece`` without a vocabulary, a ``--subword`` that
        contradicts the directory's ``tokenizer_config.json``, or a bad one.
    """
    from apache_beam.io.filesystems import FileSystems

    flags = TokenizerSettings(subword=subword)
    if vocab is None:
        if subword == "wordpiece":
            raise ValueError("--subword wordpiece needs --vocab DIR_OR_FILE")
        settings = resolve_settings(None, TokenizerSettings(subword="character"))
        return Vocabulary(tuple(character_vocab()), settings, notes=(_CHARACTER_NOTE,))
    stated, source = _stated_settings(vocab_file_path(vocab))
    settings = resolve_settings(stated, flags, source)
    return Vocabulary(tuple(read_vocab(vocab, FileSystems.open)), settings, source)
