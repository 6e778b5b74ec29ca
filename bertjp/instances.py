"""Masked-LM + next-sentence instances, as the reference's ``create_pretraining_data.py``.

The functions follow the reference (google-research/bert's algorithm, recipe §8)
draw for draw, given the same ``rng`` and the same random documents: the short
target length, the A/B split, the random-next coin, the random document and its
start, the truncation and whole-word masking with the 80/10/10 choice made per
token. Where the reference picks the random document from all documents in
memory, the caller passes ``draw_document``, so that a distributed job can draw
from a bucket of documents instead.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Callable, Sequence

__all__ = [
    "Instance",
    "InstanceConfig",
    "create_instances_from_document",
    "create_masked_lm_predictions",
    "num_to_predict",
    "truncate_seq_pair",
]

Document = Sequence[Sequence[str]]  # sentences of tokens


@dataclasses.dataclass(frozen=True)
class InstanceConfig:
    """The reference's flags (defaults of its README's CC-100 run).

    Attributes:
      max_seq_length: tokens per instance, ``[CLS]``/``[SEP]`` included.
      max_predictions_per_seq: the most masked positions.
      masked_lm_prob: the share of tokens to mask.
      short_seq_prob: how often a document pass uses a shorter random target.
      do_whole_word_mask: mask MeCab words (``##`` groups) whole.
    """

    max_seq_length: int = 128
    max_predictions_per_seq: int = 19
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    do_whole_word_mask: bool = True

    def __post_init__(self):
        if self.max_seq_length < 5:
            raise ValueError(f"max_seq_length must be at least 5, got {self.max_seq_length}")
        if self.max_predictions_per_seq < 1 or not 0 < self.masked_lm_prob < 1:
            raise ValueError("max_predictions_per_seq must be >= 1 and masked_lm_prob in (0, 1)")
        if not 0 <= self.short_seq_prob <= 1:
            raise ValueError(f"short_seq_prob must be in [0, 1], got {self.short_seq_prob}")


@dataclasses.dataclass(frozen=True)
class Instance:
    """One training example before id conversion.

    Attributes:
      tokens: ``[CLS] A [SEP] B [SEP]`` with the masked tokens replaced.
      segment_ids: 0 up to the first ``[SEP]``, 1 after it.
      is_random_next: B comes from another document.
      masked_lm_positions: the masked positions, ascending.
      masked_lm_labels: the original tokens at those positions.
    """

    tokens: tuple[str, ...]
    segment_ids: tuple[int, ...]
    is_random_next: bool
    masked_lm_positions: tuple[int, ...]
    masked_lm_labels: tuple[str, ...]


def truncate_seq_pair(tokens_a: list, tokens_b: list, max_num_tokens: int,
                      rng: random.Random) -> None:
    """Trims the longer of the two (B on ties) from a random end until they fit."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        trunc = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        assert len(trunc) >= 1
        if rng.random() < 0.5:
            del trunc[0]
        else:
            trunc.pop()


def num_to_predict(num_tokens: int, config: InstanceConfig) -> int:
    """``min(max_predictions, max(1, round(len × prob)))``, Python's half-to-even round."""
    return min(config.max_predictions_per_seq,
               max(1, int(round(num_tokens * config.masked_lm_prob))))


def create_masked_lm_predictions(tokens: Sequence[str], config: InstanceConfig,
                                 vocab_words: Sequence[str], rng: random.Random):
    """Masks whole words (or tokens); returns ``(tokens, positions, labels)``."""
    cand_indexes: list[list[int]] = []
    for i, token in enumerate(tokens):
        if token in ("[CLS]", "[SEP]"):
            continue
        if config.do_whole_word_mask and cand_indexes and token.startswith("##"):
            cand_indexes[-1].append(i)
        else:
            cand_indexes.append([i])
    rng.shuffle(cand_indexes)
    output = list(tokens)
    budget = num_to_predict(len(tokens), config)
    masked: list[tuple[int, str]] = []
    covered: set[int] = set()
    for group in cand_indexes:
        if len(masked) >= budget:
            break
        if len(masked) + len(group) > budget or any(i in covered for i in group):
            continue
        for index in group:
            covered.add(index)
            if rng.random() < 0.8:
                replacement = "[MASK]"
            elif rng.random() < 0.5:
                replacement = tokens[index]
            else:
                replacement = vocab_words[rng.randint(0, len(vocab_words) - 1)]
            output[index] = replacement
            masked.append((index, tokens[index]))
    masked.sort()
    return output, tuple(i for i, _ in masked), tuple(label for _, label in masked)


def _instance(tokens_a, tokens_b, is_random_next, config, vocab_words, rng) -> Instance:
    tokens = ["[CLS]", *tokens_a, "[SEP]", *tokens_b, "[SEP]"]
    segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
    output, positions, labels = create_masked_lm_predictions(tokens, config, vocab_words, rng)
    return Instance(tuple(output), tuple(segment_ids), is_random_next, positions, labels)


def create_instances_from_document(
    document: Document,
    draw_document: Callable[[random.Random], Document],
    config: InstanceConfig,
    vocab_words: Sequence[str],
    rng: random.Random,
) -> list[Instance]:
    """All instances of one document for one dupe pass.

    Args:
      document: the document's sentences, each a non-empty list of tokens.
      draw_document: returns a random document other than this one (when it can),
        using ``rng``: the reference draws ``rng.randint(0, n_docs - 1)`` up to ten
        times until the index differs.
      config: lengths and probabilities.
      vocab_words: the vocabulary in id order (random replacements).
      rng: the random stream of this document and pass.
    """
    max_num_tokens = config.max_seq_length - 3
    target = max_num_tokens
    if rng.random() < config.short_seq_prob:
        target = rng.randint(2, max_num_tokens)
    instances = []
    chunk: list[Sequence[str]] = []
    length = 0
    i = 0
    while i < len(document):
        chunk.append(document[i])
        length += len(document[i])
        if (i == len(document) - 1 or length >= target) and chunk:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            tokens_a = [t for sentence in chunk[:a_end] for t in sentence]
            tokens_b: list[str] = []
            if len(chunk) == 1 or rng.random() < 0.5:
                is_random_next = True
                target_b = target - len(tokens_a)
                other = draw_document(rng)
                start = rng.randint(0, len(other) - 1)
                for sentence in other[start:]:
                    tokens_b.extend(sentence)
                    if len(tokens_b) >= target_b:
                        break
                i -= len(chunk) - a_end  # put the unused sentences back
            else:
                is_random_next = False
                tokens_b = [t for sentence in chunk[a_end:] for t in sentence]
            truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            if tokens_a and tokens_b:
                instances.append(
                    _instance(tokens_a, tokens_b, is_random_next, config, vocab_words, rng))
            chunk, length = [], 0
        i += 1
    return instances
