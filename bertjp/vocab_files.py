"""Vocabulary files: ``vocab.txt``, ``tokenizer_config.json`` and the character vocabulary.

A tokenizer directory holds ``vocab.txt`` (one token per line, id order) and a
``tokenizer_config.json`` that makes ``transformers.AutoTokenizer.from_pretrained``
build a ``BertJapaneseTokenizer`` with MeCab (unidic-lite) words and WordPiece or
character subwords, cased — the released v3 configuration (recipe §9).
"""

from __future__ import annotations

import json
import os

from bertjp.alphabet import unidic_lite_alphabet
from bertjp.mecab import MecabDictionary

__all__ = ["NUM_UNUSED", "character_vocab", "special_tokens", "tokenizer_files",
           "write_tokenizer_dir"]

NUM_UNUSED = 10
_MECAB_DIC = {"unidic-lite": "unidic_lite", "unidic_lite": "unidic_lite", "ipadic": "ipadic"}


def special_tokens(num_unused: int = NUM_UNUSED) -> list[str]:
    """``[PAD] [UNK] [CLS] [SEP] [MASK]`` then ``[unused0]``… (ids 0…)."""
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
        f"[unused{i}]" for i in range(num_unused)]


def character_vocab(alphabet: list[str] | None = None, num_unused: int = NUM_UNUSED) -> list[str]:
    """The character vocabulary: special tokens, then the alphabet in code-point order
    (the reference's ``head -n 7027`` of the WordPiece vocabulary)."""
    alphabet = unidic_lite_alphabet() if alphabet is None else sorted(alphabet)
    return special_tokens(num_unused) + alphabet


def _mecab_kwargs(dictionary: MecabDictionary) -> dict:
    """transformers' ``mecab_kwargs``: a packaged dictionary by name, else ``-d``/``-r``."""
    if dictionary.name in _MECAB_DIC:
        return {"mecab_dic": _MECAB_DIC[dictionary.name]}
    return {"mecab_dic": None, "mecab_option": f"-d {dictionary.dicdir} -r {dictionary.rcfile}"}


def tokenizer_files(vocab: list[str], subword: str,
                    dictionary: MecabDictionary | str = "unidic-lite",
                    model_max_length: int = 512) -> dict[str, bytes]:
    """The contents of ``vocab.txt`` and ``tokenizer_config.json``, by file name.

    A dictionary directory is written as a MeCab option (``-d DIR -r MECABRC``): the
    directory must exist where the tokenizer is loaded.

    Raises:
      ValueError: a token contains a line break or tokens repeat.
    """
    if subword not in ("wordpiece", "character"):
        raise ValueError(f"subword must be 'wordpiece' or 'character', got {subword!r}")
    if isinstance(dictionary, str):
        dictionary = MecabDictionary(dictionary)
    if any("\n" in t or "\r" in t for t in vocab) or len(set(vocab)) != len(vocab):
        raise ValueError("vocabulary tokens must be unique and contain no line breaks")
    config = {
        "tokenizer_class": "BertJapaneseTokenizer",
        "model_max_length": model_max_length,
        "do_lower_case": False,
        "word_tokenizer_type": "mecab",
        "subword_tokenizer_type": subword,
        "mecab_kwargs": _mecab_kwargs(dictionary),
    }
    return {
        "vocab.txt": "".join(t + "\n" for t in vocab).encode("utf-8"),
        "tokenizer_config.json": (json.dumps(config, ensure_ascii=False, indent=2) + "\n")
        .encode("utf-8"),
    }


def write_tokenizer_dir(directory: str, vocab: list[str], subword: str,
                        dictionary: MecabDictionary | str = "unidic-lite",
                        model_max_length: int = 512) -> None:
    """Writes :func:`tokenizer_files` into a local ``directory``."""
    files = tokenizer_files(vocab, subword, dictionary, model_max_length)
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
