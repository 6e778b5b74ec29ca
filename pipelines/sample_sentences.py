"""``bertjp sample-sentences``: a seeded sample of K corpus sentences (tokenizer training).

The reference runs ``grep -v '^$' | shuf | head -n 10000000``, which cannot be
reproduced. Here every non-empty line gets a key hashed from ``--seed``, the
file's name and the line number, and the K smallest keys are the sample — a
uniform sample without replacement, written in key order (shuffled). Finding
the K-th key needs only a fixed-size histogram of the keys plus the few lines of
one histogram bin, so memory does not grow with the corpus or with K.

    MatchInputs → ReadSentences → histogram → keep keys below the cut → WriteShards(1)
"""

from __future__ import annotations

import argparse
import dataclasses
import posixpath
from typing import Sequence

import apache_beam as beam

from bertjp import sharding
from bertjp.sharding import plan_sample, stable_key
from pipelines import common
from pipelines.io import MatchInputs, ReadFileFn, WriteShards
from pipelines.options import add_common_arguments
from pipelines.stats import DEAD, STATS

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


def _take_smallest(element, plan):
    _, records = element
    return sorted(records)[: plan.partial]


def _summarize(merged: dict) -> dict:
    summary = common.summarize_counts(merged)["summary"]
    # Every candidate not sampled is "dropped" as not_sampled; say so explicitly.
    sampled = sum(o["records"] for o in merged["outputs"] if o.get("role") == "shard")
    candidates = summary["documents"]["in"] - sum(summary["documents"]["dropped"].values())
    summary["documents"]["out"] = sampled
    summary["documents"]["dropped"]["not_sampled"] = candidates - sampled
    summary["accounted"] = summary["documents"]["in"] == sampled + sum(
        summary["documents"]["dropped"].values())
    summary["unit"] = "sentences"
    summary.pop("shards")  # one file of sentences, no documents: see "outputs"
    return {"summary": summary}


def build(pipeline: beam.Pipeline, config: SampleConfig):
    """Adds the sample-sentences job to ``pipeline``; returns the manifest PCollection."""
    read = (
        pipeline
        | "MatchInputs" >> MatchInputs(config.inputs)
        | "ReadSentences" >> beam.ParDo(ReadSentencesFn(config))
        .with_outputs(STATS, DEAD, main="lines")
    )
    lines = read["lines"]
    plan = (
        lines
        | "Bins" >> beam.Map(lambda kv: (sharding.bin_of(kv[0]), 1))
        | "Histogram" >> beam.CombinePerKey(sum)
        | "AsDict" >> beam.combiners.ToDict()
        | "Plan" >> beam.Map(plan_sample, config.num_sentences)
    )
    plan_side = beam.pvalue.AsSingleton(plan)
    decided = lines | "Decide" >> beam.Partition(
        lambda kv, n, p: ("take", "maybe", "skip").index(p.decide(kv[0])), 3, p=plan_side)
    from_cut_bin = (
        decided[1]
        | "KeyCutBin" >> beam.Map(lambda kv: (None, kv))
        | "GroupCutBin" >> beam.GroupByKey()
        | "TakeSmallest" >> beam.FlatMap(_take_smallest, plan=plan_side)
    )
    sample = (decided[0], from_cut_bin) | "Sample" >> beam.Flatten()
    written = sample | "WriteSample" >> WriteShards(
        [config.output], compress=config.output.endswith(".gz"),
        chunk_bytes=config.chunk_bytes, role="shard")
    header = common.job_header("sample-sentences", config)
    return common.finish_job(config, header, [read[STATS], written], [read[DEAD]], _summarize)


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
    parser.add_argument("--max-line-bytes", type=int, default=64 << 20, metavar="N",
                        help="longer lines go to the dead letters (default: 64 MiB)")
    parser.add_argument("--chunk-mb", type=float, default=16, metavar="MB",
                        help="most sampled text one worker sorts at once (default: 16)")
    add_common_arguments(parser)
    return parser


def config_from_args(args) -> SampleConfig:
    return SampleConfig(
        inputs=tuple(args.input), output=common.resolve_output(args.output, "file"),
        num_sentences=args.num_sentences,
        seed=args.seed, max_line_bytes=args.max_line_bytes,
        chunk_bytes=max(1, int(args.chunk_mb * (1 << 20))))


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs ``bertjp sample-sentences``; returns the manifest."""
    return common.run_command(make_parser(), argv, config_from_args, build,
                              expected="is it corpus text (one sentence per line, UTF-8)?")
