"""Vocabulary files: ``vocab.txt``, ``tokenizer_config.json`` and the character vocabulary.

A tokenizer directory holds ``vocab.txt`` (one token per line, id order) and a
``tokenizer_config.json`` that makes ``transformers.AutoTokenizer.from_pretrained``
build a ``BertJapaneseTokenizer`` with MeCab (unidic-lite) words and WordPiece or
character subwords, cased — the released v3 configuration (recipe §9).

Reading a directory back (:func:`read_tokenizer_config`, :func:`resolve_settings`):
what its ``tokenizer_config.json`` states about tokenization — the subword type,
lowercasing and the MeCab dictionary — is what a job that tokenizes with its
vocabulary must use; a flag may supply what the file does not state, and a flag that
contradicts it is an error naming both.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex

from bertjp.alphabet import unidic_lite_alphabet
from bertjp.mecab import MecabDictionary

__all__ = ["NUM_UNUSED", "TOKENIZER_CONFIG", "VOCAB_FILE", "TokenizerSettings",
           "character_vocab", "parse_vocab", "read_tokenizer_config", "read_vocab",
           "resolve_settings", "special_tokens", "tokenizer_files", "vocab_file_path",
           "write_tokenizer_dir"]

TOKENIZER_CONFIG = "tokenizer_config.json"
VOCAB_FILE = "vocab.txt"
_SUBWORDS = ("wordpiece", "character")
_PACKAGED_NAMES = {"unidic_lite": "unidic-lite", "ipadic": "ipadic"}

NUM_UNUSED = 10
_MECAB_DIC = {"unidic-lite": "unidic_lite", "unidic_lite": "unidic_lite", "ipadic": "ipadic"}


def vocab_file_path(path: str) -> str:
    """A ``--vocab`` value's file: the path itself when it ends in ``.txt``, else
    ``PATH/vocab.txt`` (a tokenizer directory, local or ``gs://``)."""
    path = str(path)
    return path if path.endswith(".txt") else path.rstrip("/") + "/" + VOCAB_FILE


def parse_vocab(data: bytes | str) -> list[str]:
    """The tokens of a ``vocab.txt``, one per line, in id order. Lines are split on
    ``\\n`` only and not stripped (the v3 vocabulary's id 15 is a single space); a final
    newline ends the last token, it does not add an empty one."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    tokens = text.split("\n")
    if text.endswith("\n"):
        tokens.pop()
    return tokens


def read_vocab(path: str, open_binary=None) -> list[str]:
    """The tokens of ``path`` (a ``vocab.txt`` or a tokenizer directory: see
    :func:`vocab_file_path`), the one reader of vocabulary files.

    Args:
      path: the file or directory.
      open_binary: ``f(path)`` returning a binary file (a context manager); the
        built-in ``open`` by default. Callers pass Beam's ``FileSystems.open`` or
        ``tf.io.gfile.GFile`` for ``gs://``.

    Raises:
      FileNotFoundError: naming the file, when it does not exist.
    """
    file_path = vocab_file_path(path)
    opener = open_binary or (lambda p: open(p, "rb"))  # noqa: SIM115 - closed by the with
    try:
        with opener(file_path) as f:
            return parse_vocab(f.read())
    except FileNotFoundError:
        raise FileNotFoundError(f"no vocabulary file at {file_path}") from None


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
    """Transformers' ``mecab_kwargs``: a packaged dictionary by name, else ``-d``/``-r``."""
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


@dataclasses.dataclass(frozen=True)
class TokenizerSettings:
    """How a vocabulary's text is tokenized; ``None`` where nothing says.

    Attributes:
      subword: ``wordpiece`` or ``character``.
      do_lower_case: lowercase as the reference's ``--do_lower_case``.
      mecab_dict: ``unidic-lite``, ``ipadic`` or a dictionary directory.
      mecabrc: the ``mecabrc`` of a dictionary directory.
    """

    subword: str | None = None
    do_lower_case: bool | None = None
    mecab_dict: str | None = None
    mecabrc: str | None = None

    def dictionary(self) -> MecabDictionary:
        """The MeCab dictionary (unidic-lite when none is named)."""
        return MecabDictionary(self.mecab_dict or "unidic-lite", self.mecabrc)


_OPTION_NAMES = {"-d": "dicdir", "--dicdir": "dicdir", "-r": "rcfile", "--rcfile": "rcfile"}


def _mecab_option_paths(option: str, source: str) -> tuple[str | None, str | None]:
    """``(dicdir, mecabrc)`` of a ``mecab_option`` string (``-d DIR -r FILE``, also
    ``-dDIR`` and ``--dicdir=DIR``); any other MeCab option is an error."""
    try:
        words = iter(shlex.split(option))
    except ValueError as err:
        raise ValueError(f"{source}: mecab_option {option!r}: {err}") from None
    found: dict[str, str] = {}
    for word in words:
        name, eq, value = word.partition("=")
        if not (name.startswith("--") and eq):
            name, value = (word, next(words, None)) if word in _OPTION_NAMES else (
                word[:2], word[2:] or None)
        if name not in _OPTION_NAMES or value is None:
            raise ValueError(f"{source}: mecab_option {option!r}: bertjp applies only -d "
                             "(dictionary directory) and -r (mecabrc)")
        found[_OPTION_NAMES[name]] = value
    return found.get("dicdir"), found.get("rcfile")


def _stated_dictionary(config: dict, source: str) -> tuple[str | None, str | None]:
    """The MeCab dictionary ``mecab_kwargs`` names, as ``(mecab_dict, mecabrc)``."""
    kwargs = config.get("mecab_kwargs")
    if kwargs is None:
        return None, None
    if not isinstance(kwargs, dict):
        raise ValueError(f"{source}: mecab_kwargs must be an object, got {kwargs!r}")
    dic, option = kwargs.get("mecab_dic"), (kwargs.get("mecab_option") or "").strip()
    if dic is not None and dic not in _PACKAGED_NAMES:
        raise ValueError(f"{source}: mecab_dic {dic!r} is not supported: bertjp uses "
                         "unidic_lite, ipadic or a dictionary directory (mecab_option -d DIR)")
    if dic is not None:
        if option:
            raise ValueError(f"{source}: mecab_option {option!r} beside mecab_dic {dic!r}: "
                             "bertjp cannot apply both")
        return _PACKAGED_NAMES[dic], None
    dicdir, rcfile = _mecab_option_paths(option, source)
    if dicdir is None:
        raise ValueError(f"{source}: mecab_kwargs names no dictionary (mecab_dic, or "
                         "mecab_option -d DIR)")
    return dicdir, rcfile


def read_tokenizer_config(data: bytes | str, source: str) -> TokenizerSettings:
    """What a ``tokenizer_config.json`` states about tokenization.

    Args:
      data: the file's contents.
      source: its path, for messages.

    Returns:
      The settings the file states (``None`` for what it does not).

    Raises:
      ValueError: the file is not JSON, or asks for a tokenizer bertjp cannot
        reproduce (another tokenizer class or word tokenizer, word or subword
        tokenization turned off, an unknown subword type or MeCab dictionary, MeCab
        options other than ``-d``/``-r``).
    """
    try:
        config = json.loads(data)
    except ValueError as err:
        raise ValueError(f"{source} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{source} is not a JSON object")
    cls = config.get("tokenizer_class")
    if cls is not None and cls != "BertJapaneseTokenizer":
        raise ValueError(f"{source}: tokenizer_class {cls!r}: bertjp tokenizes as "
                         "BertJapaneseTokenizer (MeCab words, then subwords)")
    words = config.get("word_tokenizer_type")
    if words is not None and words != "mecab":
        raise ValueError(f"{source}: word_tokenizer_type {words!r}: bertjp splits words "
                         "with MeCab only")
    for key in ("do_word_tokenize", "do_subword_tokenize"):
        if config.get(key) is False:
            raise ValueError(f"{source}: {key} false: bertjp always splits MeCab words into "
                             "subwords")
    subword = config.get("subword_tokenizer_type")
    if subword is not None and subword not in _SUBWORDS:
        raise ValueError(f"{source}: subword_tokenizer_type {subword!r}: bertjp supports "
                         "wordpiece and character")
    lower = config.get("do_lower_case")
    if lower is not None and not isinstance(lower, bool):
        raise ValueError(f"{source}: do_lower_case must be true or false, got {lower!r}")
    mecab_dict, mecabrc = _stated_dictionary(config, source)
    return TokenizerSettings(subword, lower, mecab_dict, mecabrc)


def _dictionary_text(settings: TokenizerSettings) -> str:
    text = settings.mecab_dict or "unidic-lite"
    return text + (f" with mecabrc {settings.mecabrc}" if settings.mecabrc else "")


def _contradiction(given: str, flag: str, source: str, key: str, stated: str) -> ValueError:
    """The one-line error of a flag that contradicts the tokenizer directory."""
    return ValueError(f"{given} contradicts {source} ({key}: {stated}); drop {flag}, or "
                      "pass the vocabulary it belongs to")


def _checked_dictionary(settings: TokenizerSettings, where: str) -> MecabDictionary:
    """``settings.dictionary()``, its error prefixed with where the name came from."""
    try:
        return settings.dictionary()
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _check_flags(stated: TokenizerSettings, flags: TokenizerSettings, source: str) -> None:
    """Raises when a flag's value differs from what the file states."""
    if None not in (stated.subword, flags.subword) and stated.subword != flags.subword:
        raise _contradiction(f"--subword {flags.subword}", "--subword", source,
                             "subword_tokenizer_type", stated.subword)
    # --do-lower-case over a cased directory is the reference's own behaviour (its
    # create_pretraining_data.py lowercases by default): allowed, the flag wins.
    if stated.do_lower_case is True and flags.do_lower_case is False:
        flag = "--do-lower-case" if flags.do_lower_case else "--no-do-lower-case"
        raise _contradiction(flag, flag, source, "do_lower_case",
                             str(stated.do_lower_case).lower())
    if stated.mecab_dict is None or (flags.mecab_dict is None and flags.mecabrc is None):
        return
    flag = "--mecab-dict" if flags.mecab_dict is not None else "--mecabrc"
    given = dataclasses.replace(stated if flags.mecab_dict is None else flags,
                                mecabrc=flags.mecabrc)
    if (_checked_dictionary(given, flag).canonical
            != _checked_dictionary(stated, source).canonical):
        raise _contradiction(f"{flag} {flags.mecab_dict or flags.mecabrc}", flag, source,
                             "mecab_kwargs", _dictionary_text(stated))


def resolve_settings(stated: TokenizerSettings | None, flags: TokenizerSettings,
                     source: str | None = None) -> TokenizerSettings:
    """The settings to tokenize with: the file's, else the flags', else the defaults
    (wordpiece, cased, unidic-lite).

    Args:
      stated: what the tokenizer directory's ``tokenizer_config.json`` states, or
        ``None`` when the vocabulary came without one.
      flags: what the command-line flags (``--subword``, ``--do-lower-case``,
        ``--mecab-dict``, ``--mecabrc``) give; ``None`` where a flag was not passed.
      source: the path of the ``tokenizer_config.json``, for messages.

    Raises:
      ValueError: a flag contradicts the file (the message names both), or the MeCab
        dictionary does not exist here.
    """
    stated = stated or TokenizerSettings()
    source = source or TOKENIZER_CONFIG
    _check_flags(stated, flags, source)
    from_file = stated.mecab_dict is not None
    dictionary = stated if from_file else flags
    result = TokenizerSettings(
        subword=stated.subword or flags.subword or "wordpiece",
        do_lower_case=(True if flags.do_lower_case
                       else bool(stated.do_lower_case)),
        mecab_dict=dictionary.mecab_dict or "unidic-lite", mecabrc=dictionary.mecabrc)
    # A missing dictionary directory fails here, not on a worker.
    _checked_dictionary(result, source if from_file else "--mecab-dict")
    return result
