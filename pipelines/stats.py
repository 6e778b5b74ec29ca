"""Counts, dead letters and the manifest.

Every count is kept twice: as a Beam counter (namespace ``bertjp``, visible in
the Dataflow UI while the job runs) and as a ``("count", {...})`` element on a
DoFn's ``stats`` output, summed inside the pipeline. The manifest is built from
those elements by the pipeline itself, so it is complete on any runner, also
when a Dataflow job is submitted and not waited for.
"""

from __future__ import annotations

import collections
import datetime
import importlib.metadata
import logging
import platform
import time
import uuid
from typing import NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from bertjp import manifest as manifest_lib
from bertjp.defaults import EXCERPT_CHARS

__all__ = [
    "CollectManifest",
    "DEAD",
    "STATS",
    "TallyDoFn",
    "Tallied",
    "TalliedParDo",
    "dead_letter",
    "read_manifest",
    "write_manifest",
    "write_text",
]

NAMESPACE = "bertjp"
STATS = "stats"
DEAD = "dead_letter"
_MAIN = "main"
_LOG = logging.getLogger(__name__)


class TallyDoFn(beam.DoFn):
    """A DoFn that counts what it does.

    ``self.count(name, n)`` increments the Beam counter ``name`` and a per-bundle
    tally that ``finish_bundle`` emits on the ``stats`` output. Apply one with
    :class:`TalliedParDo`, which splits its outputs.
    """

    def start_bundle(self):
        self._tally = collections.Counter()
        self._counters = getattr(self, "_counters", {})

    def count(self, name: str, n: int = 1) -> None:
        """Adds ``n`` (nothing when 0) to the counter ``name`` and to the bundle's tally."""
        if not n:
            return
        self._tally[name] += n
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = beam.metrics.Metrics.counter(NAMESPACE, name)
        counter.inc(n)

    def finish_bundle(self):
        if self._tally:
            yield _global_stats(("count", dict(self._tally)))
            self._tally = collections.Counter()


def _global_stats(element) -> beam.pvalue.TaggedOutput:
    """A stats element emitted from ``finish_bundle`` (which must name its window)."""
    return beam.pvalue.TaggedOutput(
        STATS, WindowedValue(element, GlobalWindow().max_timestamp(), [GlobalWindow()]))


class Tallied(NamedTuple):
    """The outputs of a counted step (see :class:`TalliedParDo`).

    Attributes:
      main: its records.
      stats: its ``(kind, value)`` stats elements, for the manifest.
      dead: its dead-letter records (see :func:`dead_letter`).
    """

    main: beam.PCollection
    stats: beam.PCollection
    dead: beam.PCollection


class TalliedParDo(beam.PTransform):
    """``beam.ParDo(fn)`` of a :class:`TallyDoFn`, its outputs split into a :class:`Tallied`.

    The one place that names a counted DoFn's output tags: its records on the main
    output, its tallies on ``stats``, its bad records on ``dead_letter``.

    Args:
      fn: the DoFn.
      *args: more arguments of ``fn.process`` (side inputs too), as for ``beam.ParDo``.
      **kwargs: the same, by name.
    """

    def __init__(self, fn: beam.DoFn, *args, **kwargs):
        super().__init__()
        self._fn = fn
        self._args = args
        self._kwargs = kwargs

    def expand(self, pcoll):
        outputs = pcoll | beam.ParDo(self._fn, *self._args, **self._kwargs).with_outputs(
            STATS, DEAD, main=_MAIN)
        return Tallied(outputs[_MAIN], outputs[STATS], outputs[DEAD])


def dead_letter(source: str, line: int, reason: str, detail: str, head: bytes | str,
                doc_id: str | None = None) -> beam.pvalue.TaggedOutput:
    """A dead-letter record for a bad input record, on the ``dead_letter`` output.

    Args:
      source: the input file.
      line: the 1-based line number in it.
      reason: the counter name of the reason.
      detail: a human-readable explanation.
      head: the record's first bytes (decoded with replacement characters).
      doc_id: the document id, when known.
    """
    if isinstance(head, bytes):
        head = head[:EXCERPT_CHARS].decode("utf-8", "replace")
    record = {"source": source, "line": line, "reason": reason, "detail": detail,
              "excerpt": head[:EXCERPT_CHARS]}
    if doc_id is not None:
        record["doc_id"] = doc_id
    return beam.pvalue.TaggedOutput(DEAD, record)


class _ManifestFn(beam.CombineFn):
    """Merges ``(kind, value)`` stats: counts are summed, the rest listed."""

    def create_accumulator(self):
        return {"count": collections.Counter(), "input": [], "output": []}

    def add_input(self, acc, element):
        kind, value = element
        if kind == "count":
            acc["count"].update(value)
        else:
            acc[kind].append(value)
        return acc

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for acc in accumulators:
            merged["count"].update(acc["count"])
            merged["input"] += acc["input"]
            merged["output"] += acc["output"]
        return merged

    def extract_output(self, acc):
        return {
            "counts": dict(sorted(acc["count"].items())),
            "inputs": sorted(acc["input"], key=lambda r: r["path"]),
            "outputs": sorted(acc["output"], key=lambda r: r["path"]),
        }


def library_versions() -> dict[str, str]:
    """Versions of the packages that shape the output, as installed here."""
    versions = {"python": platform.python_version()}
    for name in ("bertjp", "apache-beam", "fugashi", "unidic-lite", "ipadic"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _write_manifest(merged: dict, path: str, header: dict, finish) -> dict:
    """Builds the job's :class:`bertjp.manifest.Manifest` (validated) and writes it.

    ``finish(counts, outputs)`` gives the job's :class:`bertjp.manifest.Summary`.
    Returns the manifest's JSON object.
    """
    draft = manifest_lib.from_json({**header, **merged}, path)
    summary = finish(draft.counts, draft.outputs) if finish is not None else None
    manifest = draft.with_(
        summary=summary, versions=library_versions(),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    write_text(path, manifest_lib.dumps(manifest))
    _LOG.info("wrote %s", path)
    return manifest_lib.to_json(manifest)


def write_manifest(path: str, manifest: manifest_lib.Manifest) -> None:
    """Writes a manifest (see :func:`write_text`)."""
    write_text(path, manifest_lib.dumps(manifest))


def write_text(path: str, text: str) -> None:
    """Writes a UTF-8 text file (local or ``gs://``) under a temporary name, then renames
    it: a reader never sees half of it."""
    temp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    with FileSystems.create(temp, mime_type="application/json") as f:
        f.write(text.encode("utf-8"))
    FileSystems.rename([temp], [path])


class CollectManifest(beam.PTransform):
    """Gathers every stats element and writes the manifest JSON.

    Args:
      path: where to write it.
      header: what is known when the pipeline is built (command, config, seed).
      finish: ``f(counts, outputs) -> bertjp.manifest.Summary``: the totals and the
        accounting check from the merged counts and the written files.
    """

    def __init__(self, path: str, header: dict, finish=None):
        super().__init__()
        self._path = path
        self._header = header
        self._finish = finish

    def expand(self, stats):
        return (
            stats
            | "Merge" >> beam.CombineGlobally(_ManifestFn())
            | "Write" >> beam.Map(_write_manifest, self._path, self._header, self._finish)
        )


def read_manifest(path: str) -> manifest_lib.Manifest:
    """Reads and validates a manifest (local or ``gs://``); errors name the file and field."""
    with FileSystems.open(path) as f:
        return manifest_lib.loads(f.read(), path)


class Progress:
    """Logs a progress line at most every ``interval`` seconds."""

    def __init__(self, what: str, interval: float = 30.0):
        self._what = what
        self._interval = interval
        self._start = self._last = time.monotonic()

    def maybe_log(self, lines: int, raw_bytes: int) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        rate = raw_bytes / max(now - self._start, 1e-9) / 1e6
        _LOG.info("%s: %d lines, %.1f MB read (%.1f MB/s)", self._what, lines,
                  raw_bytes / 1e6, rate)
