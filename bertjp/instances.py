"""Masked-LM + next-sentence instances, as the reference's ``create_pretraining_data.py``.

The functions follow the reference (google-research/bert's algorithm, recipe §8)
draw for draw, given the same ``rng`` and the same random documents: the short
target length, the A/B split, the random-next coin, the random document and its
start, the truncation and whole-word masking with the 80/10/10 choice made per
token. Where the reference picks the random document from all documents in
memory, the caller passes ``draw_document``, so that a distributed job can draw
from a bucket of documents instead.

Tokens are *codes*, ``id << 1 | continuation`` (``JapaneseTokenizer.token_codes``):
ints carry the id and the ``##`` mark whole-word masking needs (the character
vocabulary's ids drop it), and cost no string handling or id lookups here.
"""

from __future__ import annotations

import array
import dataclasses
import random
from typing import Callable, Iterator, Sequence

from bertjp.defaults import REFERENCE_SCRIPT
from bertjp.sharding import stable_key

__all__ = [
    "Instance",
    "InstanceConfig",
    "Specials",
    "create_instances_from_document",
    "bucket_instances",
    "create_masked_lm_predictions",
    "document_drawer",
    "num_to_predict",
    "truncate_seq_pair",
]

Document = Sequence[Sequence[int]]  # sentences of token codes


@dataclasses.dataclass(frozen=True)
class InstanceConfig:
    """The reference's flags, with the reference script's defaults
    (:data:`bertjp.defaults.REFERENCE_SCRIPT`; the v3 recipe's stages are
    :data:`bertjp.defaults.PRESETS`).

    Attributes:
      max_seq_length: tokens per instance, ``[CLS]``/``[SEP]`` included.
      max_predictions_per_seq: the most masked positions.
      masked_lm_prob: the share of tokens to mask.
      short_seq_prob: how often a document pass uses a shorter random target.
      do_whole_word_mask: mask MeCab words (``##`` groups) whole.
      reference_shuffle: shuffle all candidate groups with ``rng.shuffle`` as the
        reference does (its exact random stream). Off, the groups are drawn one by one
        (a forward Fisher-Yates) only until the masking budget is spent: the same
        uniform order, the same distribution of masks, about 5x fewer draws.
    """

    max_seq_length: int = REFERENCE_SCRIPT.max_seq_length
    max_predictions_per_seq: int = REFERENCE_SCRIPT.max_predictions_per_seq
    masked_lm_prob: float = REFERENCE_SCRIPT.masked_lm_prob
    short_seq_prob: float = REFERENCE_SCRIPT.short_seq_prob
    do_whole_word_mask: bool = True
    reference_shuffle: bool = False

    def __post_init__(self):
        # Phrased as the flags of bertjp pretraining-data and bertjp estimate.
        if self.max_seq_length < 5:
            raise ValueError(f"--max-seq-length must be at least 5, got {self.max_seq_length}")
        if self.max_predictions_per_seq < 1:
            raise ValueError("--max-predictions-per-seq must be at least 1, got "
                             f"{self.max_predictions_per_seq}")
        if self.max_predictions_per_seq > self.max_maskable:
            raise ValueError(
                f"--max-predictions-per-seq {self.max_predictions_per_seq} is more than a "
                f"sequence of --max-seq-length {self.max_seq_length} can hold: at most "
                f"{self.max_maskable} ([CLS] and the two [SEP] are never masked)")
        if not 0 < self.masked_lm_prob < 1:
            raise ValueError(f"--masked-lm-prob must be in (0, 1), got {self.masked_lm_prob}")
        if not 0 <= self.short_seq_prob <= 1:
            raise ValueError(f"--short-seq-prob must be in [0, 1], got {self.short_seq_prob}")

    @property
    def max_maskable(self) -> int:
        """The most tokens an instance can mask: all but ``[CLS]`` and the two ``[SEP]``."""
        return self.max_seq_length - 3


@dataclasses.dataclass(frozen=True)
class Specials:
    """The ids the instances need: ``[CLS]``, ``[SEP]``, ``[MASK]`` and the vocabulary size
    (random replacements are ``rng.randint(0, vocab_size - 1)``, as the reference's
    ``vocab_words[randint(0, len(vocab_words) - 1)]``)."""

    cls: int
    sep: int
    mask: int
    vocab_size: int

    @classmethod
    def from_vocab(cls, vocab_words: Sequence[str]) -> "Specials":
        index = {token: i for i, token in enumerate(vocab_words)}
        return cls(index["[CLS]"], index["[SEP]"], index["[MASK]"], len(vocab_words))


@dataclasses.dataclass(frozen=True)
class Instance:
    """One training example.

    Attributes:
      input_ids: ``[CLS] A [SEP] B [SEP]`` with the masked tokens replaced.
      a_length: tokens in segment 0: ``[CLS]``, A and the first ``[SEP]``.
      is_random_next: B comes from another document.
      masked_lm_positions: the masked positions, ascending.
      masked_lm_ids: the original ids at those positions.
      tokens_truncated: tokens of A and B that truncation removed to fit the instance
        (not in the record; the job counts them).
    """

    input_ids: tuple[int, ...]
    a_length: int
    is_random_next: bool
    masked_lm_positions: tuple[int, ...]
    masked_lm_ids: tuple[int, ...]
    tokens_truncated: int = 0

    @property
    def segment_ids(self) -> tuple[int, ...]:
        """0 up to the first ``[SEP]``, 1 after it."""
        return (0,) * self.a_length + (1,) * (len(self.input_ids) - self.a_length)


def truncate_seq_pair(tokens_a: list, tokens_b: list, max_num_tokens: int,
                      rng: random.Random) -> int:
    """Trims the longer of the two (B on ties) from a random end until they fit;
    returns how many tokens it removed.

    One ``rng.random()`` per removed token, in the reference's order; the lists are
    cut once at the end (the reference deletes token by token)."""
    len_a, len_b = len(tokens_a), len(tokens_b)
    if len_a + len_b <= max_num_tokens:
        return 0
    front_a = back_a = front_b = back_b = 0
    random_ = rng.random
    while len_a + len_b > max_num_tokens:
        if len_a > len_b:
            assert len_a >= 1
            len_a -= 1
            if random_() < 0.5:
                front_a += 1
            else:
                back_a += 1
        else:
            assert len_b >= 1
            len_b -= 1
            if random_() < 0.5:
                front_b += 1
            else:
                back_b += 1
    tokens_a[:] = tokens_a[front_a:len(tokens_a) - back_a]
    tokens_b[:] = tokens_b[front_b:len(tokens_b) - back_b]
    return front_a + back_a + front_b + back_b


def num_to_predict(num_tokens: int, config: InstanceConfig) -> int:
    """``min(max_predictions, max(1, round(len × prob)))``, Python's half-to-even round."""
    return min(config.max_predictions_per_seq,
               max(1, int(round(num_tokens * config.masked_lm_prob))))


def _shuffled_lazily(items: list, rng: random.Random):
    """The items in a uniformly random order, each drawn when it is asked for (forward
    Fisher-Yates: position ``k`` takes a uniform pick of the ``n - k`` items left)."""
    n = len(items)
    randbelow = rng._randbelow  # what rng.shuffle draws with
    for k in range(n - 1):
        j = k + randbelow(n - k)
        items[k], items[j] = items[j], items[k]
        yield items[k]
    if n:
        yield items[n - 1]


def create_masked_lm_predictions(codes: Sequence[int], config: InstanceConfig,
                                 specials: Specials, rng: random.Random):
    """Masks whole words (or tokens) of ``[CLS] A [SEP] B [SEP]`` given as token codes
    (``id << 1 | continuation``); returns ``(ids, positions, label_ids)``.

    As the reference: candidate groups skip ``[CLS]``/``[SEP]`` (a continuation right
    after a ``[SEP]`` joins the group before it), the groups are shuffled with
    ``rng.shuffle``, a group that would exceed the budget is skipped, and each masked
    token draws 80 % ``[MASK]``, 10 % itself, 10 % a random id. The shuffle is the
    reference's ``rng.shuffle`` with ``config.reference_shuffle``, else the same uniform
    order drawn lazily (see ``InstanceConfig``)."""
    cls_code, sep_code = specials.cls << 1, specials.sep << 1
    cand_indexes: list[list[int]] = []
    whole_words = config.do_whole_word_mask
    for i, code in enumerate(codes):
        if code == cls_code or code == sep_code:
            continue
        if code & 1 and whole_words and cand_indexes:
            cand_indexes[-1].append(i)
        else:
            cand_indexes.append([i])
    if config.reference_shuffle:
        rng.shuffle(cand_indexes)
        groups = iter(cand_indexes)
    else:
        groups = _shuffled_lazily(cand_indexes, rng)
    original = [code >> 1 for code in codes]
    output = original[:]
    budget = num_to_predict(len(codes), config)
    positions: list[int] = []
    random_, mask, top = rng.random, specials.mask, specials.vocab_size - 1
    for group in groups:  # the groups are disjoint: no index is covered twice
        if len(positions) >= budget:
            break
        if len(positions) + len(group) > budget:
            continue
        for index in group:
            if random_() < 0.8:
                output[index] = mask
            elif random_() >= 0.5:
                output[index] = rng.randint(0, top)
            positions.append(index)
    positions.sort()
    return output, tuple(positions), tuple(original[i] for i in positions)


def _instance(tokens_a, tokens_b, is_random_next, config, specials, rng,
              truncated: int = 0) -> Instance:
    codes = [specials.cls << 1, *tokens_a, specials.sep << 1, *tokens_b, specials.sep << 1]
    ids, positions, labels = create_masked_lm_predictions(codes, config, specials, rng)
    return Instance(tuple(ids), len(tokens_a) + 2, is_random_next, positions, labels,
                    truncated)


def document_drawer(documents: Sequence[Document], index: int):
    """The reference's draw of a random document for ``documents[index]``: up to ten
    ``rng.randint(0, n - 1)`` tries for another index (the last try stands)."""

    def draw(rng: random.Random) -> Document:
        for _ in range(10):
            j = rng.randint(0, len(documents) - 1)
            if j != index:
                break
        return documents[j]

    return draw


def create_instances_from_document(
    document: Document,
    draw_document: Callable[[random.Random], Document],
    config: InstanceConfig,
    specials: Specials,
    rng: random.Random,
) -> list[Instance]:
    """All instances of one document for one dupe pass.

    Args:
      document: the document's sentences, each a non-empty list of token codes
        (``id << 1 | continuation``, see ``JapaneseTokenizer.token_codes``).
      draw_document: returns a random document other than this one (when it can),
        using ``rng``: the reference draws ``rng.randint(0, n_docs - 1)`` up to ten
        times until the index differs.
      config: lengths and probabilities.
      specials: the special ids and the vocabulary size (random replacements).
      rng: the random stream of this document and pass.
    """
    max_num_tokens = config.max_seq_length - 3
    target = max_num_tokens
    if rng.random() < config.short_seq_prob:
        target = rng.randint(2, max_num_tokens)
    instances = []
    chunk: list[Sequence[int]] = []
    length = 0
    i = 0
    while i < len(document):
        chunk.append(document[i])
        length += len(document[i])
        if (i == len(document) - 1 or length >= target) and chunk:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            tokens_a = [t for sentence in chunk[:a_end] for t in sentence]
            tokens_b: list[int] = []
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
            truncated = truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            if tokens_a and tokens_b:
                instances.append(_instance(tokens_a, tokens_b, is_random_next, config,
                                           specials, rng, truncated))
            chunk, length = [], 0
        i += 1
    return instances


def bucket_instances(members, dupe: int, seed: int, config: InstanceConfig,
                     specials: Specials, code_type: str) -> Iterator[tuple[int, Instance]]:
    """``(record key, instance)`` for every document of one bucket of one dupe pass.

    Args:
      members: the bucket's ``(document key, [sentence codes packed as array bytes])``,
        in any order (they are sorted, so the result does not depend on the worker).
      dupe: the pass.
      seed: ``--random-seed``. Document ``d`` draws from ``Random(BLAKE2b(seed, "d:dupe"))``;
        its ``n``-th instance gets the record key ``BLAKE2b(seed, "d:dupe:n")``.
      config: lengths and probabilities, as ``create_instances_from_document``.
      specials: the special tokens' ids, as ``create_instances_from_document``.
      code_type: the ``array`` type code of the packed sentences.
    """
    docs = [(key, [array.array(code_type, s).tolist() for s in sentences])
            for key, sentences in sorted(members)]
    documents = [sentences for _, sentences in docs]
    for idx, (key, sentences) in enumerate(docs):
        rng = random.Random(stable_key(seed, f"{key}:{dupe}"))
        instances = create_instances_from_document(
            sentences, document_drawer(documents, idx), config, specials, rng)
        for n, inst in enumerate(instances):
            yield stable_key(seed, f"{key}:{dupe}:{n}"), inst
