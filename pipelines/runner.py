"""Running a pipeline command: checks before the job, the run, and what it says after.

:func:`run_command` parses the flags, checks the inputs against their manifests and
the output place, removes what an interrupted run left, runs the job, replaces the
shards of an earlier run, prints the summary (:func:`format_summary`) and fails on a
result that kept nothing (:func:`result_problem`). Ctrl-C and failures remove the
run's temporary files (:class:`JobInterrupted`).
"""

from __future__ import annotations

import argparse
import posixpath
import sys
import time
import uuid
from typing import TYPE_CHECKING

import apache_beam as beam

from bertjp.manifest import Manifest, to_json
from bertjp.outputs import shard_glob, stale_outputs, temp_glob
from pipelines.io import (
    check_inputs_against_manifests,
    match_literal,
    remove_paths,
    validate_inputs,
)
from pipelines.options import parse_args, setup_logging
from pipelines.stats import read_manifest, write_manifest

if TYPE_CHECKING:
    from pipelines.common import JobConfig

__all__ = ["EmptyResult", "JobInterrupted", "format_summary", "result_problem", "run_command"]


def _by_reason(counts: dict[str, int]) -> str:
    return (" (" + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) + ")"
            if counts else "")


def format_summary(manifest: Manifest, seconds: float, manifest_path: str) -> str:
    """A few lines for the terminal from a manifest."""
    s = manifest.summary
    docs = s.documents
    inputs = manifest.inputs
    shards = manifest.shards()
    lines = [
        f"{manifest.command} finished in {seconds:.1f} s",
        f"  inputs:      {len(inputs)} file(s), {sum(i.bytes for i in inputs):,} bytes, "
        f"{sum(i.lines for i in inputs):,} lines",
        f"  {s.record_unit + ':':<12} {docs.in_:,} in, {docs.out:,} out, "
        f"{sum(docs.dropped.values()):,} dropped{_by_reason(docs.dropped)}",
    ]
    if s.sentences is not None:
        filtered = s.sentences.filtered
        lines.append(f"  sentences:   {s.sentences.kept:,} kept, {sum(filtered.values()):,} "
                     f"filtered{_by_reason(filtered)}")
    if s.instances is not None:
        share = (s.random_next or 0) / max(1, s.instances)
        lines.append(f"  instances:   {s.instances:,} ({s.masked_tokens:,} masked tokens, "
                     f"{100 * share:.1f} % random next)")
    if s.unk_rate is not None:
        lines.append(f"  tokens:      {s.tokens:,} ({100 * s.unk_rate:.2f} % [UNK], "
                     f"{s.tokens_truncated:,} dropped by truncation, "
                     f"{s.nul_characters:,} NUL characters read as spaces)")
    for warning in s.warnings or []:
        lines.append(f"  WARNING: {warning}")
    if s.lines_dropped:
        lines.append("  lines dropped: " + _by_reason(s.lines_dropped)[2:-1])
    if shards:
        sizes = [o.records for o in shards]
        label = "shards:     " if s.record_unit == "documents" else "output:     "
        lines.append(
            f"  {label} {len(shards)} file(s), {sum(o.content_bytes or 0 for o in shards):,} "
            f"bytes uncompressed, {min(sizes):,}–{max(sizes):,} records per file")
    lines.append(f"  dead letters: {s.dead_letters:,}"
                 + ("" if s.accounted else "   WARNING: counts do not add up"))
    for vocab in (o for o in manifest.outputs if o.role == "vocab"):
        lines.append(f"  vocabulary:  {vocab.records:,} tokens from {vocab.distinct_words:,} "
                     f"distinct words, alphabet coverage {100 * s.alphabet_coverage:.2f} % "
                     f"-> {vocab.path}")
    if manifest.replaced:
        lines.append(f"  replaced:    {len(manifest.replaced)} file(s) of an earlier run "
                     f"removed: {_listing(manifest.replaced, 5)}")
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


def result_problem(manifest: Manifest, expected: str) -> str | None:
    """Why a finished job's result is not worth having, or ``None`` when it is.

    Problems: nothing kept; almost nothing kept (under 1 % of the records read
    survive the job's drops, sampling aside); more than half of the input lines are
    dead letters (not what the command reads). ``expected`` says what the input
    should have been.
    """
    s = manifest.summary
    docs, unit = s.documents, s.record_unit
    inputs = _listing([i.path for i in manifest.inputs]) or "the input"
    lines = sum(i.lines for i in manifest.inputs)
    dropped = {**docs.dropped, **(s.lines_dropped or {})}
    lost = sum(v for k, v in docs.dropped.items() if k not in _BY_DESIGN)
    kept, kept_unit = (s.instances, "instances") if s.instances is not None else (docs.out, unit)
    if docs.in_ == 0 and not dropped:
        what = f"no {unit} in {inputs} ({lines:,} lines, all blank)"
    elif kept == 0:
        what = f"nothing was kept: 0 {kept_unit} from {docs.in_:,} {unit} of {inputs}"
    elif docs.in_ >= 100 and docs.in_ - lost < _ALMOST_NOTHING * docs.in_:
        what = f"almost nothing was kept: {docs.in_ - lost:,} of {docs.in_:,} {unit} of {inputs}"
    elif lines and s.dead_letters > lines / 2:
        what = (f"{s.dead_letters:,} of the {lines:,} lines of {inputs} are dead letters "
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


def _replace_earlier(config: JobConfig, stale: list[str], manifest: Manifest) -> Manifest:
    """Removes the shards of an earlier run and records them in the manifest."""
    remove_paths(stale)
    manifest = manifest.with_(replaced=stale)
    write_manifest(config.manifest_path, manifest)
    return manifest


def run_command(parser: argparse.ArgumentParser, argv, config_from_args, build,
                expected: str = "check the input") -> dict:
    """Parses arguments, runs the job, prints the summary, returns the manifest (its JSON
    object, as written).

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
        manifest = _replace_earlier(config, stale, manifest)
    print(format_summary(manifest, time.monotonic() - start, config.manifest_path), flush=True)
    problem = result_problem(manifest, expected)
    if problem and not getattr(args, "allow_empty", False):
        raise EmptyResult(problem)
    if problem:
        print(f"{parser.prog}: warning: {problem}", file=sys.stderr, flush=True)
    return to_json(manifest)
