"""Which words ``bertjp extend-vocab`` adds: normalised as the tokenizer reads them, those
already in the vocabulary or not representable set aside, and a corpus's most frequent
words that the tokenizer splits into several pieces."""

from __future__ import annotations

import collections
import dataclasses
import gzip
import re
import unicodedata
from typing import Iterable

from bertjp.tokenization import SPECIAL_TOKENS, JapaneseTokenizer

__all__ = ["AddedWord", "WordPlan", "corpus_words", "normalize_word", "plan_words"]

_UNUSED = re.compile(r"\[unused\d+\]")


@dataclasses.dataclass(frozen=True)
class AddedWord:
    """A word that becomes a token.

    Attributes:
      word: the token (the word as the tokenizer normalises it).
      id: its id in the extended vocabulary.
      slot: whether it took an ``[unused*]`` slot (else it was appended).
      pieces: the old tokenizer's pieces of the word.
      piece_ids: their ids (the rows the new row is the mean of).
      mecab_words: MeCab's words of the word alone (one: the token can be used).
    """

    word: str
    id: int
    slot: bool
    pieces: tuple[str, ...]
    piece_ids: tuple[int, ...]
    mecab_words: tuple[str, ...]


@dataclasses.dataclass
class WordPlan:
    """What happens to each requested word.

    Attributes:
      added: the words that become tokens, in the order they were requested.
      present: words already in the vocabulary, with their ids.
      unknown: words the old tokenizer turns into ``[UNK]``.
      invalid: words that cannot be one token, with the reason.
      duplicates: words requested more than once (after normalisation).
    """

    added: list[AddedWord] = dataclasses.field(default_factory=list)
    present: dict[str, int] = dataclasses.field(default_factory=dict)
    unknown: list[str] = dataclasses.field(default_factory=list)
    invalid: dict[str, str] = dataclasses.field(default_factory=dict)
    duplicates: list[str] = dataclasses.field(default_factory=list)

    @property
    def mecab_split(self) -> list[AddedWord]:
        """Added words MeCab splits when they stand alone (see the module docstring)."""
        return [a for a in self.added if len(a.mecab_words) != 1]


def normalize_word(tokenizer: JapaneseTokenizer, word: str) -> str:
    """``word`` as the tokenizer normalises text: lowercased when it lowercases, NFKC."""
    word = word.strip()
    if tokenizer.do_lower_case and word not in SPECIAL_TOKENS:
        word = word.lower()
    return unicodedata.normalize("NFKC", word).strip()


def plan_words(tokenizer: JapaneseTokenizer, words: Iterable[str]) -> WordPlan:
    """Sorts ``words`` into added, present, unknown, invalid and repeated words.

    The added words take the tokenizer's ``[unused*]`` tokens in id order, then the
    ids after its last one.

    Args:
      tokenizer: the model's (old) WordPiece tokenizer.
      words: the requested words; blank ones are ignored.
    """
    plan = WordPlan()
    slots = [i for i, t in enumerate(tokenizer.vocab) if _UNUSED.fullmatch(t)]
    seen: set[str] = set()
    for raw in words:
        word = normalize_word(tokenizer, raw)
        if not word:
            continue
        if word in seen:
            plan.duplicates.append(word)
            continue
        seen.add(word)
        if word in tokenizer.ids:
            plan.present[word] = tokenizer.ids[word]
        elif any(ch.isspace() for ch in word):
            plan.invalid[word] = "contains whitespace (a token is part of one word)"
        elif word.startswith("##"):
            plan.invalid[word] = "starts with ## (the continuation prefix)"
        elif len(word) > tokenizer.max_input_chars_per_word:
            plan.invalid[word] = (f"longer than {tokenizer.max_input_chars_per_word} "
                                  "characters (the tokenizer makes it [UNK])")
        else:
            [(pieces, ids, _)] = tokenizer.encode_words([word])
            if tokenizer.unk_id in ids:
                plan.unknown.append(word)
                continue
            n = len(plan.added)
            new_id = slots[n] if n < len(slots) else len(tokenizer.vocab) + n - len(slots)
            plan.added.append(AddedWord(word, new_id, n < len(slots), tuple(pieces),
                                        tuple(ids), tuple(tokenizer.words(word))))
    return plan


def _open_text(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")  # noqa: SIM115 - closed by the caller


def corpus_words(tokenizer: JapaneseTokenizer, paths: Iterable[str], top_k: int,
                 exclude: Iterable[str] = ()) -> list[tuple[str, int]]:
    """The ``top_k`` most frequent words of corpus files the tokenizer splits.

    Words are the tokenizer's MeCab words of each line (its lowercasing, NFKC); kept are
    those with a letter that become more than one piece and no ``[UNK]``, and that are
    not in ``exclude`` (already requested). Ties go to the word that sorts first.

    Args:
      tokenizer: the model's WordPiece tokenizer.
      paths: text files (``.gz`` read compressed), one sentence or document per line.
      top_k: how many words.
      exclude: normalised words to leave out.

    Returns:
      ``(word, count)`` pairs, most frequent first.
    """
    counts: collections.Counter = collections.Counter()
    for path in paths:
        with _open_text(path) as f:
            for line in f:
                if line.strip():
                    counts.update(tokenizer.words(line.strip()))
    excluded = set(exclude)
    out = []
    for word, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(out) >= top_k:
            break
        if word in excluded or word in tokenizer.ids or not any(
                unicodedata.category(ch).startswith("L") for ch in word):
            continue
        [(_, ids, _)] = tokenizer.encode_words([word])
        if len(ids) > 1 and tokenizer.unk_id not in ids:
            out.append((word, count))
    return out
