"""Deterministic, balanced assignment of records to shards, and sampling.

Every record gets a 63-bit key hashed from the seed and a stable id of the
record (never from worker, bundle or arrival order). A fixed histogram of the
keys' top 16 bits, weighted by record size, is all a plan needs:

* shards are contiguous key ranges cut where the cumulative size is nearest to
  ``i / N`` of the total, so shards differ in size by at most about one bin
  (one record, on small inputs);
* inside a shard, records are written in key order (a seeded shuffle), in chunks
  of bounded size, so no worker ever holds more than one chunk.

The histogram is a sum of integers, so it does not depend on how the input was
split into bundles, and neither does anything derived from it.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
from typing import Mapping

from bertjp.defaults import CHUNK_BYTES

__all__ = [
    "BIN_BITS",
    "KEY_BITS",
    "SamplePlan",
    "ShardPlan",
    "bin_of",
    "plan_sample",
    "plan_shards",
    "position_key",
    "stable_key",
]

KEY_BITS = 63  # keys fit a signed 64-bit varint
BIN_BITS = 16
NUM_BINS = 1 << BIN_BITS
_SHIFT = KEY_BITS - BIN_BITS


def stable_key(seed: int, record_id: str) -> int:
    """A uniform 63-bit key for ``record_id`` under ``seed`` (BLAKE2b)."""
    digest = hashlib.blake2b(
        record_id.encode("utf-8", "surrogatepass"),
        digest_size=8,
        key=str(seed).encode(),
    ).digest()
    return int.from_bytes(digest, "big") >> 1


_MAX_FILES = 1 << 4
_MAX_LINES = 1 << 24


def position_key(file_index: int, line: int) -> int:
    """A key that orders records by input position (file, then line).

    Used instead of :func:`stable_key` to keep the input order (the reference's
    order). Bits 59–62 hold the file index and bits 35–58 the line number, so a
    16-bit histogram bin spans 4,096 lines and write chunks stay small.

    Raises:
      ValueError: more than 16 files or a line number of 2**24 or more.
    """
    if not 0 <= file_index < _MAX_FILES or not 0 <= line < _MAX_LINES:
        raise ValueError(
            f"input order can be kept for at most {_MAX_FILES} files of at most "
            f"{_MAX_LINES - 1:,} lines (got file #{file_index + 1}, line {line:,})"
        )
    return (file_index << 59) | (line << 35)


def bin_of(key: int) -> int:
    """The histogram bin of a key (its top 16 bits)."""
    return key >> _SHIFT


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    """Which shard and which write chunk each key goes to.

    Attributes:
      num_shards: the number of shards.
      shard_starts: the first bin of each shard (non-decreasing; equal values
        mean an empty shard).
      chunk_starts: the first bin of each chunk, ascending.
      chunk_shards: the shard of each chunk.
      total_bytes: the size of all records.
    """

    num_shards: int
    shard_starts: tuple[int, ...]
    chunk_starts: tuple[int, ...]
    chunk_shards: tuple[int, ...]
    total_bytes: int

    def shard_of(self, key: int) -> int:
        return bisect.bisect_right(self.shard_starts, bin_of(key)) - 1

    def chunk_of(self, key: int) -> int:
        return bisect.bisect_right(self.chunk_starts, bin_of(key)) - 1


def plan_shards(
    bin_sizes: Mapping[int, int], num_shards: int, chunk_bytes: int = CHUNK_BYTES
) -> ShardPlan:
    """Cuts the key space into ``num_shards`` shards of nearly equal size.

    Args:
      bin_sizes: total record size per non-empty bin.
      num_shards: how many shards; any positive number.
      chunk_bytes: the largest write chunk, unless a single bin is larger.

    Returns:
      The :class:`ShardPlan`.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}")
    bins = sorted(b for b, size in bin_sizes.items() if size > 0)
    sizes = [bin_sizes[b] for b in bins]
    cumulative = [0, *itertools.accumulate(sizes)]  # size of bins[:i]
    total = cumulative[-1]
    starts = [0]
    for i in range(1, num_shards):
        target = total * i / num_shards
        j = bisect.bisect_left(cumulative, target)  # first cut at or past the target
        if j > 0 and target - cumulative[j - 1] < cumulative[min(j, len(bins))] - target:
            j -= 1
        first_bin = bins[j] if j < len(bins) else NUM_BINS
        starts.append(max(first_bin, starts[-1]))
    chunk_starts, chunk_shards = [], []
    for shard in range(num_shards):
        end = starts[shard + 1] if shard + 1 < num_shards else NUM_BINS
        lo, hi = bisect.bisect_left(bins, starts[shard]), bisect.bisect_left(bins, end)
        filled = None
        for b, size in zip(bins[lo:hi], sizes[lo:hi], strict=True):
            if filled is None or filled + size > chunk_bytes:
                chunk_starts.append(b if filled is not None else starts[shard])
                chunk_shards.append(shard)
                filled = 0
            filled += size
    return ShardPlan(num_shards, tuple(starts), tuple(chunk_starts), tuple(chunk_shards), total)


@dataclasses.dataclass(frozen=True)
class SamplePlan:
    """Which keys a bottom-k sample takes.

    Attributes:
      below_bin: every key in a bin below this one is taken.
      partial: how many of the smallest keys in bin ``below_bin`` are taken.
      total: the number of candidates.
      taken: the sample size (``k``, or ``total`` when there are fewer).
    """

    below_bin: int
    partial: int
    total: int
    taken: int

    def decide(self, key: int) -> str:
        """``"take"``, ``"maybe"`` (the partial bin) or ``"skip"`` for a key."""
        b = bin_of(key)
        if b < self.below_bin:
            return "take"
        if b == self.below_bin and self.partial:
            return "maybe"
        return "skip"


def plan_sample(bin_counts: Mapping[int, int], k: int) -> SamplePlan:
    """Plans the sample of the ``k`` smallest keys from per-bin counts."""
    if k < 0:
        raise ValueError(f"the sample size must not be negative, got {k}")
    total = sum(bin_counts.values())
    if total <= k:
        return SamplePlan(NUM_BINS, 0, total, total)
    taken = 0
    for b in sorted(bin_counts):
        if taken + bin_counts[b] >= k:
            return SamplePlan(b, k - taken, total, k)
        taken += bin_counts[b]
    raise AssertionError("unreachable: total > k")
