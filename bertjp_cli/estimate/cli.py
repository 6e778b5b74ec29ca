"""``bertjp estimate``'s command line: flags → :class:`EstimateConfig` → the estimate.

The flags are read once, in :func:`main`, into an :class:`EstimateConfig`; nothing
below sees them. :func:`estimate` matches the input, loads the vocabulary, measures
the stages on a sample (:mod:`.measure`), projects them (:mod:`.project`) and
gathers the report (:mod:`.report`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Sequence

from bertjp.defaults import BUCKET_DOCUMENTS, PRESETS, REFERENCE_SCRIPT
from bertjp_cli.estimate.config import EstimateConfig
from bertjp_cli.estimate.project import STARTUP_MINUTES, projection, stage_rates
from bertjp_cli.estimate.report import build_report, render
from bertjp_cli.estimate.sample import MB, match_inputs
from bertjp_cli.estimate.vocabulary import load_vocabulary

__all__ = ["config_from_args", "estimate", "main", "make_parser", "parse_config"]


def _positive(kind):
    """An argparse type: ``kind(text)``, refused unless positive."""

    def parse(text: str):
        """The value of ``text``, if positive."""
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def make_parser() -> argparse.ArgumentParser:
    """The command line of ``bertjp estimate``; its defaults are the estimate's."""
    parser = argparse.ArgumentParser(
        prog="bertjp estimate", allow_abbrev=False,
        description="Measure each stage (corpus, train-vocab, pretraining-data) on a sample "
        "of the real input, in this process, and project worker-hours, wall time and cost "
        "of the whole input on Dataflow, stating the prices and assumptions used.",
        epilog="Example: bertjp estimate --input gs://B/dumps/jawiki-*-cirrussearch-content"
        ".json.gz --vocab gs://B/tokenizers/wordpiece_unidic_lite --workers 32 "
        "--machine-type n1-standard-4")
    _add_input_arguments(parser.add_argument_group("input and sample"))
    _add_cluster_arguments(parser.add_argument_group("cluster and prices"))
    _add_job_arguments(parser.add_argument_group("the jobs being estimated"))
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the whole estimate as JSON")
    out.add_argument("--verbose", action="store_true", help="show the traceback of an error")
    return parser


def _add_input_arguments(group) -> None:
    """``--input``, ``--kind``, ``--sample-mb``, ``--project-mb``."""
    group.add_argument("--input", nargs="+", action="extend", required=True, metavar="GLOB",
                       help="the raw input: local paths or gs:// URLs, globs allowed; "
                       ".gz/.bz2/.xz are decompressed; the sample comes from the first file")
    group.add_argument("--kind", choices=("auto", "wiki", "cc100"), default="auto",
                       help="wiki: a Cirrussearch dump; cc100: CC-100 text (default: auto, "
                       "from the first line)")
    group.add_argument("--sample-mb", type=_positive(float), default=4.0, metavar="MB",
                       help="decompressed MB of the first file to measure on (default: 4)")
    group.add_argument("--project-mb", type=_positive(float), default=None, metavar="MB",
                       help="project for this many decompressed MB instead of the matched "
                       "files' size × the sample's decompression ratio (e.g. 74300 for "
                       "CC-100 ja, measured on a local sample of it)")


def _add_cluster_arguments(group) -> None:
    """The Dataflow cluster: workers, machine type, disk, core speed, start-up."""
    group.add_argument("--workers", type=_positive(int), default=32, metavar="N",
                       help="Dataflow workers, --num_workers (default: 32)")
    group.add_argument("--machine-type", default="n1-standard-4", metavar="T",
                       help="worker machine type, e.g. n1-standard-4 (default), n2-standard-8, "
                       "n1-highmem-4, e2-standard-4, c2-standard-8")
    group.add_argument("--disk-gb", type=float, default=50.0, metavar="GB",
                       help="persistent disk per worker, --disk_size_gb (default: 50)")
    group.add_argument("--ssd", action="store_true", help="price SSD persistent disk")
    group.add_argument("--core-speed", type=_positive(float), default=1.0, metavar="FACTOR",
                       help="a Dataflow vCPU's speed relative to this machine's core "
                       "(default: 1.0; e.g. 0.7 for two processes per physical core)")
    group.add_argument("--startup-minutes", type=float, default=STARTUP_MINUTES,
                       metavar="MIN", help="fixed start-up of each job (default: 4)")


def _recipe(name: str) -> str:
    """The v3 recipe's value of a pretraining-data setting in each stage."""
    cc100, wikipedia = (getattr(PRESETS[p], name) for p in ("v3-cc100", "v3-wikipedia"))
    return f"{cc100} for CC-100, {wikipedia} for Wikipedia"


def _add_job_arguments(group) -> None:
    """The settings of the jobs being estimated."""
    group.add_argument("--corpus-shards", type=_positive(int), default=None, metavar="N",
                       help="corpus shards (default: 8 for wiki, 64 for cc100, as the recipe)")
    group.add_argument("--data-shards", type=_positive(int), default=None, metavar="N",
                       help="pretraining-data shards (default: as many as corpus shards)")
    group.add_argument("--mecab-dict", default="unidic-lite", metavar="DICT",
                       help="wiki sentence splitting: unidic-lite (default), ipadic or a "
                       "dictionary directory")
    group.add_argument("--vocab-sample-sentences", type=_positive(int), default=10_000_000,
                       metavar="N", help="tokenizer-training sample (default: 10,000,000, "
                       "the recipe's)")
    group.add_argument("--vocab", metavar="DIR_OR_FILE", default=None,
                       help="tokenizer directory or vocab.txt for pretraining-data (default: "
                       "the character vocabulary, with a note)")
    group.add_argument("--subword", choices=("wordpiece", "character"), default=None,
                       help="default: the tokenizer directory's subword_tokenizer_type "
                       "(its tokenizer_config.json), else wordpiece with --vocab, else "
                       "character")
    for flag, name in (("--dupe-factor", "dupe_factor"), ("--max-seq-length", "max_seq_length"),
                       ("--max-predictions-per-seq", "max_predictions_per_seq")):
        group.add_argument(flag, type=_positive(int), metavar="N",
                           default=getattr(REFERENCE_SCRIPT, name),
                           help=f"default: %(default)s, the reference script's (recipe "
                           f"README: {_recipe(name)})")
    group.add_argument("--bucket-documents", type=_positive(int), default=BUCKET_DOCUMENTS,
                       metavar="N",
                       help=f"documents per random-next bucket (default: {BUCKET_DOCUMENTS})")




def config_from_args(args: argparse.Namespace) -> EstimateConfig:
    """The parsed command line as an :class:`EstimateConfig`.

    Raises:
      ValueError: an unknown machine type.
    """
    names = {field.name for field in dataclasses.fields(EstimateConfig)}
    values = {name: value for name, value in vars(args).items() if name in names}
    return EstimateConfig(**{**values, "inputs": tuple(args.input)})


def parse_config(argv: Sequence[str]) -> EstimateConfig:
    """The :class:`EstimateConfig` of a command line (``argv`` without ``estimate``)."""
    return config_from_args(make_parser().parse_args(argv))


def estimate(config: EstimateConfig) -> dict:
    """Measures the stages on a sample of the input and projects the whole run.

    Returns:
      The estimate as a JSON-ready dict: input, sample, cluster, stages (projected
      and measured), totals, prices, assumptions and warnings.

    Raises:
      FileNotFoundError: a pattern matches no file.
      ValueError: a bad vocabulary, or a sample that gives no document.
    """
    from bertjp_cli.estimate.measure import measure  # imports Beam and the pipelines

    files = match_inputs(config.inputs)
    vocabulary = load_vocabulary(config.vocab, config.subword)
    m = measure(files[0][0], config, vocabulary)
    input_mb = config.project_mb or sum(size for _, size in files) * m.sample.ratio / MB
    rates = stage_rates(m, input_mb, len(files), config.vocab_sample_sentences)
    proj = projection(rates, input_mb, config.workers, config.machine(), config.disk_gb,
                      ssd=config.ssd, startup_minutes=config.startup_minutes,
                      core_speed=config.core_speed)
    return build_report(config, files, m, input_mb, rates, proj, vocabulary.notes)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``bertjp estimate``; prints the estimate (text or ``--json``) on stdout."""
    args = make_parser().parse_args(argv)
    report = estimate(config_from_args(args))
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render(report))
    return 0
