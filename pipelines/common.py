"""What the pipeline commands share: configuration, flags, the output rule, and the
manifest's header and summary (running a command: :mod:`pipelines.runner`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import posixpath

import apache_beam as beam

from bertjp.defaults import CHUNK_BYTES, MAX_LINE_BYTES
from bertjp.manifest import OutputFile, ShardRow, Summary, summarize
from bertjp.sharding import stable_key
from pipelines.shards import WriteShards, shard_path
from pipelines.stats import CollectManifest

__all__ = [
    "EPILOG",
    "CorpusConfig",
    "JobConfig",
    "add_chunk_mb_argument",
    "add_corpus_arguments",
    "add_input_argument",
    "add_max_line_bytes_argument",
    "chunk_bytes_of",
    "corpus_config_kwargs",
    "dead_letter_record",
    "finish_job",
    "job_header",
    "resolve_output",
    "summarize_corpus",
    "write_outputs",
]

EPILOG = """\
Beam options: any other flag goes to Beam's PipelineOptions, e.g.
  --direct_num_workers 2 --direct_running_mode multi_processing   (local, 2 processes)
  --runner DataflowRunner --project P --region R --temp_location gs://B/tmp
      --setup_file ./setup.py                                       (Google Cloud Dataflow)
Without --runner (or with DirectRunner) the job runs locally on Beam's FnApiRunner.
Outputs: PREFIX-SSSSS-of-NNNNN.txt[.gz] shards, PREFIX.dead-letter.jsonl (bad records with
file, line and reason) and PREFIX.manifest.json (config, inputs, counts, checksums)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobConfig:
    """What every job that reads files and writes outputs has.

    Attributes:
      inputs: file paths or globs, local or ``gs://``.
      output: the output prefix (or file); dead letters and the manifest go to
        ``OUTPUT.dead-letter.jsonl`` and ``OUTPUT.manifest.json``.
      seed: seeds the keys that order and place records.
      max_line_bytes: longer input lines go to the dead letters unread.
      chunk_bytes: the most record bytes one worker sorts at once when writing.
    """

    inputs: tuple[str, ...]
    output: str
    seed: int = 0
    max_line_bytes: int = MAX_LINE_BYTES
    chunk_bytes: int = CHUNK_BYTES

    def __post_init__(self):
        if not self.inputs:
            raise ValueError("at least one --input is needed")
        if self.max_line_bytes < 1 or self.chunk_bytes < 1:
            raise ValueError("--max-line-bytes and --chunk-mb must be positive")

    @property
    def dead_letter_path(self) -> str:
        return f"{self.output}.dead-letter.jsonl"

    @property
    def manifest_path(self) -> str:
        return f"{self.output}.manifest.json"

    @property
    def shard_paths(self) -> list[str]:
        """The sharded outputs (``PREFIX-SSSSS-of-NNNNN...``); none for a one-file job."""
        return []

    @property
    def temp_prefix(self) -> str:
        """What this job's temporary files start with (``PREFIX*.tmp-*``)."""
        return self.output


@dataclasses.dataclass(frozen=True, kw_only=True)
class CorpusConfig(JobConfig):
    """Configuration shared by the corpus commands (see :class:`JobConfig`).

    Attributes:
      output: the output prefix (``.../corpus``); shards are
        ``PREFIX-00000-of-00008.txt[.gz]``.
      num_shards: how many shards (any N >= 1).
      gzip: gzip the shards.
    """

    num_shards: int = 8
    gzip: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.num_shards < 1:
            raise ValueError(f"--num-shards must be at least 1, got {self.num_shards}")

    @property
    def shard_paths(self) -> list[str]:
        suffix = ".txt.gz" if self.gzip else ".txt"
        return [shard_path(self.output, i, self.num_shards, suffix)
                for i in range(self.num_shards)]


def add_corpus_arguments(parser: argparse.ArgumentParser, default_shards: int,
                         default_stem: str) -> None:
    """``--input``, ``--output``, sharding and robustness flags."""
    io = parser.add_argument_group("input and output")
    add_input_argument(io, "input files: local paths or gs:// URLs, globs allowed; "
                       ".gz, .bz2 and .xz are decompressed", metavar="PATH_OR_GLOB")
    io.add_argument("--output", required=True, metavar="PREFIX",
                    help=f"output prefix, local or gs:// (a trailing / means "
                    f"PREFIX/{default_stem})")
    io.add_argument("--num-shards", type=int, default=default_shards, metavar="N",
                    help=f"number of output shards, any N >= 1 (default: {default_shards})")
    io.add_argument("--gzip", action="store_true", help="gzip the shards (.txt.gz)")
    io.add_argument("--seed", type=int, default=0,
                    help="seed of the document-to-shard assignment and order (default: 0)")
    add_max_line_bytes_argument(io)
    add_chunk_mb_argument(io, "document data")
    from pipelines.options import add_common_arguments

    add_common_arguments(parser)


def add_max_line_bytes_argument(parser) -> None:
    """``--max-line-bytes`` (every command that reads lines)."""
    parser.add_argument("--max-line-bytes", type=int, default=MAX_LINE_BYTES, metavar="N",
                        help="input lines longer than this go to the dead letters without "
                        f"being read into memory (default: {MAX_LINE_BYTES >> 20} MiB)")


def add_chunk_mb_argument(parser, what: str) -> None:
    """``--chunk-mb`` (every command that writes shards of text)."""
    parser.add_argument("--chunk-mb", type=float, default=CHUNK_BYTES / (1 << 20), metavar="MB",
                        help=f"most {what} one worker sorts at once when writing; bounds a "
                        f"worker's memory (default: {CHUNK_BYTES >> 20})")


def chunk_bytes_of(args) -> int:
    """``--chunk-mb`` in bytes."""
    return max(1, int(args.chunk_mb * (1 << 20)))


def add_input_argument(parser, help_: str, metavar: str = "GLOB") -> None:
    """``--input`` with one or more values, also repeated (``--input A --input B``)."""
    parser.add_argument("--input", nargs="+", action="extend", required=True,
                        metavar=metavar, help=help_ + " (several values, or the flag repeated)")


def resolve_output(value: str, kind: str, stem: str = "") -> str:
    """The one rule for ``--output`` in every command.

    Args:
      value: the flag's value.
      kind: ``"prefix"`` (sharded outputs ``PREFIX-00000-of-00008...``: a trailing
        ``/`` means ``DIR/STEM``), ``"file"`` (one file: a folder is an error) or
        ``"dir"`` (a folder of files: a trailing ``/`` is dropped).
      stem: the file-name stem a prefix gets after a trailing ``/``.

    Raises:
      ValueError: naming the flag, when the value cannot be such an output.
    """
    if not value or not value.strip():
        raise ValueError("--output must not be empty")
    if kind == "prefix":
        return value + stem if value.endswith("/") else value
    local_dir = "://" not in value and os.path.isdir(value)
    if kind == "file":
        if value.endswith("/") or local_dir:
            raise ValueError(f"--output {value!r} is a folder; name the file to write, e.g. "
                             f"{posixpath.join(value, 'sample.txt')}")
        return value
    if kind == "dir":
        value = value.rstrip("/") or "/"
        if "://" not in value and os.path.isfile(value):
            raise ValueError(f"--output {value!r} is a file; name a folder for the outputs")
        return value
    raise ValueError(f"unknown output kind {kind!r}")


def corpus_config_kwargs(args, default_stem: str) -> dict:
    """The :class:`CorpusConfig` fields the corpus commands' shared flags give."""
    return {
        "inputs": tuple(args.input),
        "output": resolve_output(args.output, "prefix", default_stem),
        "num_shards": args.num_shards,
        "gzip": args.gzip,
        "seed": args.seed,
        "max_line_bytes": args.max_line_bytes,
        "chunk_bytes": chunk_bytes_of(args),
    }


def dead_letter_record(record: dict) -> tuple[int, bytes]:
    """A dead letter as a ``(key, JSON line)`` record for the dead-letter writer."""
    key = stable_key(0, f"{record['source']}:{record['line']}")
    return key, json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"


def summarize_corpus(counts: dict, outputs: list[OutputFile]) -> Summary:
    """The corpus commands' summary: documents read (by the readers) against documents
    written (by the shard writer) and dropped by reason; per shard, its documents and
    sentences (in the corpus format every document ends with one empty line)."""
    summary = summarize(counts, outputs)
    rows = [ShardRow(path=o.path, documents=o.records, sentences=o.lines - o.records,
                     bytes=o.content_bytes)
            for o in sorted(outputs, key=lambda o: o.path) if o.role == "shard"]
    return dataclasses.replace(summary, shards=rows)


def write_outputs(config: CorpusConfig, command: str, docs, stats, dead,
                  extra_header: dict | None = None):
    """Writes the shards, the dead letters and the manifest.

    Args:
      config: the command's configuration.
      command: the command's name, for the manifest.
      docs: ``(key, document_bytes)`` records, or ``None`` when the job wrote its
        shards itself.
      stats: the stats PCollections of the job's DoFns.
      dead: the dead-letter PCollections of the job's DoFns.
      extra_header: more facts for the manifest.

    Returns:
      The PCollection of the (single) manifest dict.
    """
    if docs is not None:
        stats = [*stats, docs | "WriteShards" >> WriteShards(
            config.shard_paths, compress=config.gzip, chunk_bytes=config.chunk_bytes)]
    header = job_header(command, config, **(extra_header or {}))
    return finish_job(config, header, stats, dead)


def job_header(command: str, config: JobConfig, described: dict | None = None,
               **extra) -> dict:
    """What the manifest knows when the pipeline is built: command, config, seed, prefix."""
    return {
        "command": command,
        "config": dataclasses.asdict(config) if described is None else described,
        "seed": config.seed,
        "outputs_prefix": config.output,
        **extra,
    }


def finish_job(config: JobConfig, header: dict, stats, dead, summarize=summarize_corpus):
    """Writes the dead letters and the manifest of a job.

    Args:
      config: the job's configuration (paths).
      header: see :func:`job_header`.
      stats: the stats PCollections of the job's DoFns and writers.
      dead: the dead-letter PCollections of the job's DoFns.
      summarize: ``f(counts, outputs) -> Summary`` for the manifest.

    Returns:
      The PCollection of the (single) manifest dict.
    """
    pipeline = stats[0].pipeline
    dead_stats = (
        tuple(dead)
        | "DeadLetters" >> beam.Flatten(pipeline=pipeline)
        | "DeadLetterRecords" >> beam.Map(dead_letter_record)
        | "WriteDeadLetters" >> WriteShards([config.dead_letter_path], role="dead_letter")
    )
    return (
        (*stats, dead_stats)
        | "AllStats" >> beam.Flatten(pipeline=pipeline)
        | "Manifest" >> CollectManifest(config.manifest_path, header, summarize)
    )
