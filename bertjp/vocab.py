"""Deterministic WordPiece vocabulary training from word counts (recipe §6).

The reference trains ``tokenizers``' WordPieceTrainer (a BPE trainer whose output
is converted to WordPiece) on MeCab words, with the alphabet fixed to the UniDic
characters (``limit_alphabet`` = alphabet size), ``min_frequency`` 2 and ``##``
continuations. Its output is not reproducible: the trainer numbers the new
``##x`` tokens in the iteration order of a randomly seeded hash map, and merge
ties are broken by those numbers. Declaring the ``##x`` tokens the words will
produce up front, as special tokens in code-point order, fixes their ids and
makes the training deterministic; the merges are otherwise the same algorithm.

Training needs only the word counts, so it runs in memory bounded by the number
of distinct words, never by the corpus.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from bertjp.vocab_files import special_tokens

__all__ = ["train_wordpiece"]

_MAX_REPEAT = 1 << 16  # words per string fed to the trainer


def _alphabet_words(word_counts: Mapping[str, int], alphabet: set[str]) -> dict[str, int]:
    """Drops characters outside the alphabet (as the trainer does) and whitespace."""
    words: dict[str, int] = {}
    for word, count in word_counts.items():
        kept = "".join(ch for ch in word if ch in alphabet and not ch.isspace())
        if kept and count > 0:
            words[kept] = words.get(kept, 0) + count
    return words


def train_wordpiece(word_counts: Mapping[str, int], alphabet: Sequence[str],
                    vocab_size: int = 32768, num_unused: int = 10,
                    min_frequency: int = 2) -> list[str]:
    """Trains a WordPiece vocabulary; the same inputs give the same list, always.

    Args:
      word_counts: how often each MeCab word occurs in the training text.
      alphabet: the characters of the vocabulary (e.g. the unidic-lite alphabet);
        other characters are dropped from the words.
      vocab_size: the size of the vocabulary, special tokens included.
      num_unused: how many ``[unusedN]`` tokens follow the five special tokens.
      min_frequency: pairs seen fewer times are never merged.

    Returns:
      The tokens in id order: special tokens, the alphabet in code-point order,
      the ``##x`` continuation characters in code-point order, then the merged
      tokens in merge order (so the first ``15 + len(alphabet)`` tokens are the
      character vocabulary).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    chars = sorted(set(alphabet))
    words = _alphabet_words(word_counts, set(chars))
    continuation = sorted({"##" + ch for word in words for ch in word[1:]})
    specials = special_tokens(num_unused)
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency,
        special_tokens=specials + continuation, limit_alphabet=len(chars),
        initial_alphabet=chars, continuing_subword_prefix="##", show_progress=False)

    def sequences():
        for word in sorted(words):
            count = words[word]
            for start in range(0, count, _MAX_REPEAT):
                yield " ".join([word] * min(_MAX_REPEAT, count - start))

    tokenizer.train_from_iterator(sequences(), trainer)
    by_id = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    fixed = set(specials) | set(chars) | set(continuation)
    return specials + chars + continuation + [t for t in by_id if t not in fixed]
