"""``bertjp sample-sentences``: a seeded sample of K corpus sentences (tokenizer training).

The reference runs ``grep -v '^$' | shuf | head -n 10000000``, which cannot be
reproduced. Here every non-empty line gets a key hashed from ``--seed``, the
file's name and the line number, and the K smallest keys are the sample — a
uniform sample without replacement, written in key order (shuffled). Finding
the K-th key needs only a fixed-size histogram of the keys plus the few lines of
one histogram bin, so memory does not grow with the corpus or with K.

    ReadFiles(ReadSentencesFn) → SampleByKey (histogram, cut, the cut bin's smallest)
      → WriteShards(1)
"""

from __future__ import annotations

import argparse
import dataclasses
import posixpath
from typing import Sequence

import apache_beam as beam

from bertjp.manifest import Summary, summarize
from bertjp.sharding import stable_key
from pipelines import common, runner
from pipelines.io import ReadFileFn
from pipelines.options import add_common_arguments
from pipelines.shards import WriteShards
from pipelines.transforms import ReadFiles, SampleByKey

__all__ = ["SampleConfig", "build", "run"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class SampleConfig(common.JobConfig):
    """Configuration of ``bertjp sample-sentences`` (see :class:`common.JobConfig`).

    Attributes:
      output: the sample file; gzipped when it ends in ``.gz``.
      num_sentences: K, the sample size.
    """

    num_sentences: int

    def __post_init__(self):
        super().__post_init__()
        if self.num_sentences < 1:
            raise ValueError(f"--num-sentences must be at least 1, got {self.num_sentences}")


class ReadSentencesFn(ReadFileFn):
    """Emits ``(key, line + "\\n")`` for every non-empty, valid UTF-8 line."""

    def __init__(self, config: SampleConfig):
        super().__init__(config.max_line_bytes)
        self._seed = config.seed

    def read(self, path, lines):
        name = posixpath.basename(path)
        for item in self.text_lines(path, lines):
            if isinstance(item, beam.pvalue.TaggedOutput):
                yield item
                continue
            lineno, raw, _ = item
            yield stable_key(self._seed, f"{name}:{lineno}"), raw + b"\n"


def _summarize(counts: dict, outputs: list) -> Summary:
    """Lines read against lines sampled (by the writer) plus dropped by reason; a valid
    line that was not sampled is dropped as ``not_sampled`` (counted by the sampling
    steps)."""
    return summarize(counts, outputs, unit="sentences", records_in="lines_in",
                     by_design={"not_sampled": counts.get("not_sampled", 0)})


def build(pipeline: beam.Pipeline, config: SampleConfig):
    """Adds the sample-sentences job to ``pipeline``; returns the manifest PCollection."""
    lines = pipeline | "ReadSentences" >> ReadFiles(config.inputs, ReadSentencesFn(config))
    sample = lines.main | "Sample" >> SampleByKey(config.num_sentences)
    written = sample.main | "WriteSample" >> WriteShards(
        [config.output], compress=config.output.endswith(".gz"),
        chunk_bytes=config.chunk_bytes, role="shard")
    header = common.job_header("sample-sentences", config)
    return common.finish_job(config, header, [lines.stats, sample.stats, written],
                             [lines.dead, sample.dead], _summarize)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # an abbreviation could shadow a Beam option
        prog="bertjp sample-sentences",
        description="Draw a deterministic, uniform sample of K non-empty sentences (lines) from "
        "corpus files, e.g. for tokenizer training. The same inputs, K and --seed give the "
        "same file on any runner and worker count.",
        epilog=common.EPILOG.split("Outputs:")[0]
        + "Outputs: FILE (gzipped if it ends in .gz), FILE.dead-letter.jsonl, "
        "FILE.manifest.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common.add_input_argument(parser, "corpus files (plain or .gz), local or gs://")
    parser.add_argument("--output", required=True, metavar="FILE",
                        help="the sample, one sentence per line; local or gs://")
    parser.add_argument("--num-sentences", type=int, required=True, metavar="K",
                        help="sample size (all sentences when the corpus has fewer)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    common.add_max_line_bytes_argument(parser)
    common.add_chunk_mb_argument(parser, "sampled text")
    add_common_arguments(parser)
    return parser


def config_from_args(args) -> SampleConfig:
    return SampleConfig(
        inputs=tuple(args.input), output=common.resolve_output(args.output, "file"),
        num_sentences=args.num_sentences,
        seed=args.seed, max_line_bytes=args.max_line_bytes,
        chunk_bytes=common.chunk_bytes_of(args))


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs ``bertjp sample-sentences``; returns the manifest."""
    return runner.run_command(make_parser(), argv, config_from_args, build,
                              expected="is it corpus text (one sentence per line, UTF-8)?")
