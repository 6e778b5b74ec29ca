"""What the corpus commands share: configuration, outputs, running and the summary."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import posixpath
import sys
import time
import uuid

import apache_beam as beam

from bertjp.outputs import shard_glob, stale_outputs, temp_glob
from bertjp.sharding import stable_key
from pipelines.io import (WriteShards, check_inputs_against_manifests, match_literal,
                          remove_paths, shard_path, validate_inputs)
from pipelines.options import parse_args, setup_logging
from pipelines.stats import CollectManifest, read_manifest

__all__ = [
    "EmptyResult",
    "JobInterrupted",
    "CorpusConfig",
    "JobConfig",
    "EPILOG",
    "add_corpus_arguments",
    "add_input_argument",
    "corpus_config_kwargs",
    "dead_letter_record",
    "finish_job",
    "job_header",
    "resolve_output",
    "result_problem",
    "run_command",
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
    max_line_bytes: int = 64 << 20
    chunk_bytes: int = 16 << 20

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
    io.add_argument("--max-line-bytes", type=int, default=64 << 20, metavar="N",
                    help="input lines longer than this go to the dead letters without being "
                    "read into memory (default: 64 MiB)")
    io.add_argument("--chunk-mb", type=float, default=16, metavar="MB",
                    help="most document data one worker sorts at once when writing shards; "
                    "bounds a worker's memory (default: 16)")
    from pipelines.options import add_common_arguments

    add_common_arguments(parser)


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
    return {
        "inputs": tuple(args.input),
        "output": resolve_output(args.output, "prefix", default_stem),
        "num_shards": args.num_shards,
        "gzip": args.gzip,
        "seed": args.seed,
        "max_line_bytes": args.max_line_bytes,
        "chunk_bytes": max(1, int(args.chunk_mb * (1 << 20))),
    }


def dead_letter_record(record: dict) -> tuple[int, bytes]:
    key = stable_key(0, f"{record['source']}:{record['line']}")
    return key, json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"


def summarize_counts(merged: dict) -> dict:
    """Totals by reason, and whether every record in is accounted for."""
    counts = merged["counts"]

    def by_prefix(prefix):
        return {k[len(prefix):]: v for k, v in counts.items() if k.startswith(prefix)}

    docs_in = counts.get("documents_in", 0)
    dropped = by_prefix("dropped.")
    out = counts.get("documents_out", 0)
    summary = {
        "documents": {"in": docs_in, "out": out, "dropped": dropped},
        "dead_letters": sum(o["records"] for o in merged["outputs"]
                            if o.get("role") == "dead_letter"),
        "accounted": docs_in == out + sum(dropped.values()),
    }
    if "sentences.kept" in counts or by_prefix("sentences.filtered."):
        summary["sentences"] = {"kept": counts.get("sentences.kept", 0),
                                "filtered": by_prefix("sentences.filtered.")}
    if by_prefix("lines_dropped."):
        summary["lines_dropped"] = by_prefix("lines_dropped.")
    # In the corpus format every document ends with one empty line.
    summary["shards"] = [
        {"path": o["path"], "documents": o["records"], "sentences": o["lines"] - o["records"],
         "bytes": o["content_bytes"]}
        for o in sorted(merged["outputs"], key=lambda o: o["path"]) if o["role"] == "shard"]
    return {"summary": summary}


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


def finish_job(config: JobConfig, header: dict, stats, dead, summarize=summarize_counts):
    """Writes the dead letters and the manifest of a job.

    Args:
      config: the job's configuration (paths).
      header: see :func:`job_header`.
      stats: the stats PCollections of the job's DoFns and writers.
      dead: the dead-letter PCollections of the job's DoFns.
      summarize: ``f(merged) -> {"summary": ...}`` for the manifest.

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


def format_summary(manifest: dict, seconds: float, manifest_path: str) -> str:
    """A few lines for the terminal from a manifest."""
    s = manifest["summary"]
    docs = s["documents"]
    inputs = manifest["inputs"]
    shards = [o for o in manifest["outputs"] if o["role"] == "shard"]
    lines = [
        f"{manifest['command']} finished in {seconds:.1f} s",
        f"  inputs:      {len(inputs)} file(s), {sum(i['bytes'] for i in inputs):,} bytes, "
        f"{sum(i['lines'] for i in inputs):,} lines",
        f"  {s.get('unit', 'documents') + ':':<12} {docs['in']:,} in, {docs['out']:,} out, "
        f"{sum(docs['dropped'].values()):,} dropped"
        + (" (" + ", ".join(f"{k} {v:,}" for k, v in sorted(docs["dropped"].items())) + ")"
           if docs["dropped"] else ""),
    ]
    if "sentences" in s:
        filt = s["sentences"]["filtered"]
        lines.append(
            f"  sentences:   {s['sentences']['kept']:,} kept, {sum(filt.values()):,} filtered"
            + (" (" + ", ".join(f"{k} {v:,}" for k, v in sorted(filt.items())) + ")"
               if filt else ""))
    if "instances" in s:
        share = s["random_next"] / max(1, s["instances"])
        lines.append(f"  instances:   {s['instances']:,} ({s['masked_tokens']:,} masked tokens, "
                     f"{100 * share:.1f} % random next)")
    if "unk_rate" in s:
        lines.append(f"  tokens:      {s['tokens']:,} ({100 * s['unk_rate']:.2f} % [UNK], "
                     f"{s['tokens_truncated']:,} dropped by truncation, "
                     f"{s['nul_characters']:,} NUL characters read as spaces)")
    for warning in s.get("warnings", []):
        lines.append(f"  WARNING: {warning}")
    if s.get("lines_dropped"):
        lines.append("  lines dropped: " + ", ".join(
            f"{k} {v:,}" for k, v in sorted(s["lines_dropped"].items())))
    sizes = [o["records"] for o in shards]
    if shards:
        label = "shards:     " if s.get("unit", "documents") == "documents" else "output:     "
        lines.append(
            f"  {label} {len(shards)} file(s), {sum(o['content_bytes'] for o in shards):,} "
            f"bytes uncompressed, {min(sizes):,}–{max(sizes):,} records per file")
    lines.append(f"  dead letters: {s['dead_letters']:,}"
                 + ("" if s["accounted"] else "   WARNING: counts do not add up"))
    for vocab in (o for o in manifest["outputs"] if o["role"] == "vocab"):
        lines.append(f"  vocabulary:  {vocab['records']:,} tokens from {vocab['distinct_words']:,} "
                     f"distinct words, alphabet coverage {100 * s['alphabet_coverage']:.2f} % "
                     f"-> {vocab['path']}")
    if manifest.get("replaced"):
        lines.append(f"  replaced:    {len(manifest['replaced'])} file(s) of an earlier run "
                     f"removed: {_listing(manifest['replaced'], 5)}")
    lines.append(f"  manifest:    {manifest_path}")
    return "\n".join(lines)


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C during a job, after its temporary files were removed; says what is left."""


class EmptyResult(RuntimeError):
    """A job that ran but kept nothing (or almost nothing) of its input."""


_ALMOST_NOTHING = 0.01  # kept below 1 % of the records read: "almost nothing"
_BY_DESIGN = frozenset({"not_sampled"})  # drops that are the job's purpose, not a loss


def _listing(paths, limit: int = 3) -> str:
    names = [posixpath.basename(p) for p in paths]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit
                                       else "")


def _reasons(counts: dict) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]) if v)


def result_problem(manifest: dict, expected: str) -> str | None:
    """Why a finished job's result is not worth having, or ``None`` when it is.

    Problems: nothing kept; almost nothing kept (under 1 % of the records read
    survive the job's drops, sampling aside); more than half of the input lines are
    dead letters (not what the command reads). ``expected`` says what the input
    should have been.
    """
    s = manifest["summary"]
    docs = s["documents"]
    unit = s.get("unit", "documents")
    inputs = _listing([i["path"] for i in manifest.get("inputs", [])]) or "the input"
    lines = sum(i.get("lines", 0) for i in manifest.get("inputs", []))
    dropped = {**docs.get("dropped", {}), **s.get("lines_dropped", {})}
    lost = sum(v for k, v in docs.get("dropped", {}).items() if k not in _BY_DESIGN)
    kept, kept_unit = docs["out"], unit
    if "instances" in s:
        kept, kept_unit = s["instances"], "instances"
    if docs["in"] == 0 and not dropped:
        what = f"no {unit} in {inputs} ({lines:,} lines, all blank)"
    elif kept == 0:
        what = f"nothing was kept: 0 {kept_unit} from {docs['in']:,} {unit} of {inputs}"
    elif docs["in"] >= 100 and docs["in"] - lost < _ALMOST_NOTHING * docs["in"]:
        what = (f"almost nothing was kept: {docs['in'] - lost:,} of {docs['in']:,} {unit} "
                f"of {inputs}")
    elif lines and s.get("dead_letters", 0) > lines / 2:
        what = (f"{s['dead_letters']:,} of the {lines:,} lines of {inputs} are dead letters "
                "(not what this command reads)")
    else:
        return None
    why = _reasons(dropped)
    return (f"{what}{f' (dropped: {why})' if why else ''}; {expected} "
            "(--allow-empty accepts such a result)")


def _temp_leftovers(config: JobConfig) -> list[str]:
    return match_literal(temp_glob(config.temp_prefix))


def _stale_shards(config: JobConfig) -> list[str]:
    if not config.shard_paths:
        return []
    return stale_outputs(match_literal(shard_glob(config.output)), config.shard_paths)


def _check_writable(config: JobConfig) -> None:
    """Writes and removes a small file where the outputs go, before any work is done."""
    from apache_beam.io.filesystems import FileSystems

    joiner = "" if config.temp_prefix.endswith("/") else "."
    probe = f"{config.temp_prefix}{joiner}write-check.tmp-{uuid.uuid4().hex[:12]}"
    try:
        with FileSystems.create(probe) as f:
            f.write(b"bertjp write check\n")
        remove_paths([probe])
    except Exception as err:  # pylint: disable=broad-except
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise ValueError(f"--output {config.output!r}: cannot write there ({reason})") from None


def _prepare_outputs(parser, args, config: JobConfig) -> list[str]:
    """Checks inputs and output place before the job; removes what an interrupted run left.

    Returns the shards of an earlier run under the same prefix (removed after success).
    """
    if not getattr(args, "skip_manifest_check", False):
        problems = check_inputs_against_manifests(config.inputs)
        skip = "--skip-manifest-check reads the files anyway"
        if len(problems) == 1:
            raise ValueError(f"{problems[0]}; {skip}")
        for problem in problems:
            print(f"{parser.prog}: {problem}", file=sys.stderr)
        if problems:
            raise ValueError(f"{len(problems)} input files differ from their manifest (listed "
                             f"above); {skip}")
    _check_writable(config)
    leftovers = _temp_leftovers(config)
    if leftovers:
        remove_paths(leftovers)
        print(f"{parser.prog}: removed {len(leftovers)} temporary file(s) an interrupted run "
              f"left: {_listing(leftovers)}", file=sys.stderr, flush=True)
    return _stale_shards(config)


def _after_stop(config: JobConfig) -> str:
    """Removes this run's temporary files after a failure or Ctrl-C; says what is left."""
    try:
        temps = _temp_leftovers(config)
        remove_paths(temps)
        removed = f"removed {len(temps)} temporary file(s)/folder(s)"
    except Exception as err:  # pylint: disable=broad-except
        removed = f"could not remove the temporary files {config.temp_prefix}*.tmp-* ({err})"
    complete = len([p for p in config.shard_paths if _exists(p)])
    if not config.shard_paths:
        shards = ""
    elif complete:
        shards = (f"; {complete} of {len(config.shard_paths)} shards are complete, none "
                  "partial")
    else:
        shards = "; no shard was written"
    return f"{removed}{shards}; no manifest of this run: rerun the same command"


def _is_interrupt(err: BaseException) -> bool:
    """Whether an error raised by a runner is a Ctrl-C inside a step."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, KeyboardInterrupt) or str(err).startswith("KeyboardInterrupt"):
            return True
        err = err.__cause__ or err.__context__
    return False


def _exists(path: str) -> bool:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.exists(path)


def _replace_earlier(config: JobConfig, stale: list[str], manifest: dict) -> None:
    """Removes the shards of an earlier run and records them in the manifest."""
    from pipelines.stats import write_json

    remove_paths(stale)
    manifest["replaced"] = stale
    write_json(config.manifest_path, manifest)


def run_command(parser: argparse.ArgumentParser, argv, config_from_args, build,
                expected: str = "check the input") -> dict:
    """Parses arguments, runs the job, prints the summary, returns the manifest.

    Before the job: inputs are checked against their manifests, the output place for
    writability, and temporary files an interrupted run left are removed. After it:
    the shards of an earlier run under the same prefix (another count or suffix) are
    removed and listed, and a result that kept nothing of the input is an error
    (:class:`EmptyResult`; ``expected`` says what the input should be) unless
    ``--allow-empty``. Ctrl-C removes this run's temporary files and raises
    :class:`JobInterrupted`.
    """
    args, options = parse_args(parser, argv)
    setup_logging(args.verbose)
    try:
        config = config_from_args(args)
        validate_inputs(config.inputs)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    all_options = options.get_all_options()
    runner = all_options["runner"]
    launching = not (all_options.get("dry_run") or all_options.get("template_location"))
    started = False
    try:
        stale = _prepare_outputs(parser, args, config) if launching else []
        print(f"{parser.prog}: running on {runner}", file=sys.stderr, flush=True)
        start = time.monotonic()
        pipeline = beam.Pipeline(options=options)
        build(pipeline, config)
        started = True
        result = pipeline.run()
        if not launching:
            # Dataflow: the job was built (and, for a template, staged), not run.
            what = (f"template written to {all_options['template_location']}"
                    if all_options.get("template_location")
                    else "dry run: job built, not submitted")
            print(f"{parser.prog}: {what}", file=sys.stderr, flush=True)
            return {"dry_run": True, "result": result}
        result.wait_until_finish()
        state = str(getattr(result, "state", "DONE"))
        if "DONE" not in state:
            raise RuntimeError(f"the job ended in state {state}")
    except KeyboardInterrupt:
        raise JobInterrupted(f"interrupted: {_after_stop(config)}") from None
    except Exception as err:
        if _is_interrupt(err):  # Beam re-raises a worker's KeyboardInterrupt as its own error
            raise JobInterrupted(f"interrupted: {_after_stop(config)}") from None
        if started:
            print(f"{parser.prog}: the job failed: {_after_stop(config)}", file=sys.stderr,
                  flush=True)
        raise
    manifest = read_manifest(config.manifest_path)
    if stale:
        _replace_earlier(config, stale, manifest)
    print(format_summary(manifest, time.monotonic() - start, config.manifest_path), flush=True)
    problem = result_problem(manifest, expected)
    if problem and not getattr(args, "allow_empty", False):
        raise EmptyResult(problem)
    if problem:
        print(f"{parser.prog}: warning: {problem}", file=sys.stderr, flush=True)
    return manifest
