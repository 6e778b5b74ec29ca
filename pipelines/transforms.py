"""Composite transforms the jobs share: reading files with a counted reader, and the
seeded sample of the records with the smallest keys.

Each ``expand`` only wires steps; the logic lives in DoFns and plain functions
(:mod:`pipelines.io`, :mod:`bertjp.sharding`).
"""

from __future__ import annotations

import apache_beam as beam

from bertjp import sharding
from pipelines.io import MatchInputs
from pipelines.stats import Tallied, TalliedParDo, TallyDoFn

__all__ = ["NOT_SAMPLED", "ReadFiles", "SampleByKey"]

NOT_SAMPLED = "not_sampled"
"""The counter of the records a sample leaves out."""

_DECISIONS = ("take", "maybe", "skip")
"""The outputs of the sample's partition, in :meth:`bertjp.sharding.SamplePlan.decide`'s
words."""


class ReadFiles(beam.PTransform):
    """Reads the files that patterns match with a reader DoFn.

    ``MatchInputs`` (distinct paths; a pattern that matches nothing fails the job),
    then the reader on each path.

    Args:
      patterns: file paths or globs, local or ``gs://``.
      reader: the :class:`pipelines.io.ReadFileFn` that reads one file.

    Returns:
      A :class:`pipelines.stats.Tallied`: the reader's records, its stats (counts and
      an ``("input", {...})`` record per file) and its dead letters.
    """

    def __init__(self, patterns, reader: beam.DoFn):
        super().__init__()
        self._patterns = list(patterns)
        self._reader = reader

    def expand(self, pbegin) -> Tallied:
        return (
            pbegin
            | "MatchInputs" >> MatchInputs(self._patterns)
            | "Read" >> TalliedParDo(self._reader)
        )


class SampleByKey(beam.PTransform):
    """The ``k`` ``(key, value)`` records with the smallest keys (all when fewer), unordered.

    With seeded hash keys this is a uniform sample without replacement. A fixed-size
    histogram of the keys' bins places the cut (:func:`bertjp.sharding.plan_sample`):
    records of the bins below it are taken, of the bins above it skipped, and only
    the records of the bin it falls in meet on one worker, which takes the smallest.
    Memory grows with neither the input nor ``k``.

    Args:
      k: the sample size.

    Returns:
      A :class:`pipelines.stats.Tallied`: the sample, and the count of the records
      left out (:data:`NOT_SAMPLED`).
    """

    def __init__(self, k: int):
        super().__init__()
        self._k = k

    def expand(self, records) -> Tallied:
        plan = records | "Plan" >> _PlanSample(self._k)
        plan_side = beam.pvalue.AsSingleton(plan)
        take, maybe, _ = records | "Decide" >> beam.Partition(
            _decision, len(_DECISIONS), plan=plan_side)
        from_cut_bin = (
            maybe
            | "KeyCutBin" >> beam.Map(_in_one_group)
            | "GroupCutBin" >> beam.GroupByKey()
            | "TakeSmallest" >> beam.FlatMap(_take_smallest, plan=plan_side)
        )
        sample = (take, from_cut_bin) | "Flatten" >> beam.Flatten()
        left_out = plan | "CountLeftOut" >> TalliedParDo(_CountLeftOutFn())
        return Tallied(sample, left_out.stats, left_out.dead)


class _PlanSample(beam.PTransform):
    """``(key, value)`` records → the :class:`bertjp.sharding.SamplePlan` of ``k``."""

    def __init__(self, k: int):
        super().__init__()
        self._k = k

    def expand(self, records):
        return (
            records
            | "Bins" >> beam.Map(_count_bin)
            | "Histogram" >> beam.CombinePerKey(sum)
            | "AsDict" >> beam.combiners.ToDict()
            | "Plan" >> beam.Map(sharding.plan_sample, self._k)
        )


class _CountLeftOutFn(TallyDoFn):
    """Counts the records a :class:`bertjp.sharding.SamplePlan` leaves out."""

    def process(self, plan: sharding.SamplePlan):
        self.count(NOT_SAMPLED, plan.total - plan.taken)
        return ()


def _count_bin(record) -> tuple[int, int]:
    """``(bin, 1)``: one record in its key's histogram bin."""
    return sharding.bin_of(record[0]), 1


def _decision(record, num_partitions: int, plan: sharding.SamplePlan) -> int:
    """The partition of a record: take, maybe (the cut's bin) or skip."""
    del num_partitions  # always len(_DECISIONS)
    return _DECISIONS.index(plan.decide(record[0]))


def _in_one_group(record):
    """The record under a single key, so that the cut bin's records meet."""
    return None, record


def _take_smallest(element, plan: sharding.SamplePlan) -> list:
    """The cut bin's records with the smallest keys, as many as the plan still needs."""
    _, records = element
    return sorted(records)[: plan.partial]
