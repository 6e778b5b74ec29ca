"""The pipelines' own steps, run in this process as one worker runs them.

A :class:`DoFnRun` drives a pipeline's DoFn as a runner does (``setup``, then a
bundle of elements, then ``finish_bundle``) and sorts what it emits: the records,
the stats of its own tally (``("count", {...})``, ``("input", ...)``,
``("output", ...)``) and the dead letters. :func:`write_shards` runs the steps of
``pipelines.shards.WriteShards`` on records held in memory. :func:`encoded_bytes` is
what elements weigh in a shuffle: their size under Beam's coder for untyped
elements. Nothing here knows a record's layout, a key or a seed: that stays in the
pipelines.
"""

from __future__ import annotations

import collections
import typing
from typing import Iterable

from apache_beam import coders
from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.windowed_value import WindowedValue

from bertjp import sharding
from pipelines.stats import DEAD, STATS

__all__ = ["DoFnRun", "encoded_bytes", "write_shards"]


class DoFnRun:
    """One DoFn, set up and in one bundle, as on a worker.

    Args:
      fn: the DoFn (its ``setup`` runs now).

    Attributes:
      fn: the DoFn.
      counts: what its tally counted, after :meth:`finish`.
      stats: its other ``(kind, value)`` stats elements (input and output files).
      dead_letters: how many dead-letter records it emitted.
    """

    def __init__(self, fn):
        self.fn = fn
        self.counts: collections.Counter = collections.Counter()
        self.stats: list = []
        self.dead_letters = 0
        fn.setup()
        fn.start_bundle()

    def warm_up(self, element) -> None:
        """Processes ``element`` in a bundle of its own, left out of the counts.

        What a worker builds lazily on its first element (a MeCab tagger) is then built.
        """
        for _ in self.fn.process(element):
            pass
        self.fn.start_bundle()

    def process(self, elements: Iterable, *args) -> list:
        """The records ``fn.process`` emits for each element (``args`` as side inputs)."""
        return [out for element in elements for out in self.take(self.fn.process(element, *args))]

    def read(self, path: str, lines) -> list:
        """The records of a file reader's ``read(path, lines)`` on lines already read."""
        return self.take(self.fn.read(path, lines))

    def take(self, outputs: Iterable | None) -> list:
        """The records among ``outputs``; keeps the stats and counts the dead letters."""
        records = []
        for out in outputs or ():
            if not isinstance(out, TaggedOutput):
                records.append(out)
            elif out.tag == STATS:
                self._stat(out.value.value if isinstance(out.value, WindowedValue)
                           else out.value)
            elif out.tag == DEAD:
                self.dead_letters += 1
        return records

    def finish(self) -> collections.Counter:
        """Ends the bundle and the DoFn; returns its counts."""
        self.take(self.fn.finish_bundle())
        self.fn.teardown()
        return self.counts

    def _stat(self, element) -> None:
        """Sums a count, keeps any other stats element."""
        kind, value = element
        if kind == "count":
            self.counts.update(value)
        else:
            self.stats.append((kind, value))


def encoded_bytes(elements: Iterable) -> int:
    """What ``elements`` weigh in a ``Reshuffle`` or ``GroupByKey``.

    Their bytes under Beam's coder for untyped elements.
    """
    coder = coders.registry.get_coder(typing.Any)
    return sum(len(coder.encode(element)) for element in elements)


def write_shards(records: list, paths: list[str], temp_dir: str, *, compress: bool,
                 chunk_bytes: int) -> list[dict]:
    """``WriteShards``' steps on ``(key, bytes, ...)`` records held in memory.

    The key histogram and the shard plan, the chunks sorted and written as parts to
    ``temp_dir``, then each shard's parts concatenated (and gzipped) into its file:
    the DoFns of :class:`pipelines.shards.WriteShards`, records in one batch.

    Returns:
      The ``output`` stats of each shard (``records``, ``content_bytes``, ``bytes``...).
    """
    from pipelines.shards import FinalizeShardFn, WriteChunkFn, batch_bins, split_batch

    plan = sharding.plan_shards(batch_bins(records), len(paths), chunk_bytes)
    chunks = [(chunk, [batch]) for chunk, batch in split_batch(records, plan)]
    parts = collections.defaultdict(list)
    writer = DoFnRun(WriteChunkFn(temp_dir, batched=True, counted=False))
    for shard, part in writer.process(chunks, plan):
        parts[shard].append(part)
    finalize = DoFnRun(FinalizeShardFn(paths, compress, count_name=None, temp_dir=temp_dir))
    finalize.process([(shard, [*parts[shard], None]) for shard in range(plan.num_shards)])
    return [value for kind, value in finalize.stats if kind == "output"]
