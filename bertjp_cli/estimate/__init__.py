"""``bertjp estimate``: measure each stage on a sample of the input, project the whole run.

It reads the first ``--sample-mb`` MB of the (first) input file, decompressing it
as the pipelines do, detects a Wikipedia Cirrussearch dump or CC-100 text, and
runs the pipelines' own DoFns on that sample, in this process and timed phase by
phase:

* corpus stage: ``wiki-corpus`` (``ReadPagesFn``, ``SplitPagesFn``) or
  ``cc100-corpus`` (``ReadCc100DocumentsFn``), and the shard writer's sort and gzip;
* ``train-vocab``: ``ReadLinesFn`` and ``CountWordsFn`` on those shards, then the
  trainer (timed, not projected);
* ``pretraining-data``: ``ReadDocumentsFn``, ``TokenizeFn``, the bucket assignment,
  ``CreateInstancesFn`` for every dupe pass, and the shard writer.

The modules: :mod:`.sample` (reading the sample), :mod:`.measure` and
:mod:`.steps` (running the pipeline steps on it), :mod:`.prices` and
:mod:`.project` (the Dataflow price model, projections), :mod:`.report`
(rendering), :mod:`.cli` (flags → :class:`EstimateConfig` → the estimate).
"""

from bertjp_cli.estimate.cli import estimate, main, make_parser, parse_config
from bertjp_cli.estimate.config import EstimateConfig
from bertjp_cli.estimate.report import render
from bertjp_cli.estimate.sample import Sample, detect_kind, read_sample

__all__ = ["EstimateConfig", "Sample", "detect_kind", "estimate", "main", "make_parser",
           "parse_config", "read_sample", "render"]
