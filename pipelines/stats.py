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
import json
import logging
import platform
import time
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

__all__ = [
    "CollectManifest",
    "DEAD",
    "STATS",
    "TallyDoFn",
    "dead_letter",
    "read_manifest",
    "write_json",
]

NAMESPACE = "bertjp"
STATS = "stats"
DEAD = "dead_letter"
_LOG = logging.getLogger(__name__)


class TallyDoFn(beam.DoFn):
    """A DoFn that counts what it does.

    ``self.count(name, n)`` increments the Beam counter ``name`` and a per-bundle
    tally that ``finish_bundle`` emits on the ``stats`` output.
    """

    def start_bundle(self):
        self._tally = collections.Counter()
        self._counters = getattr(self, "_counters", {})

    def count(self, name: str, n: int = 1) -> None:
        if not n:
            return
        self._tally[name] += n
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = beam.metrics.Metrics.counter(NAMESPACE, name)
        counter.inc(n)

    def finish_bundle(self):
        if self._tally:
            yield beam.pvalue.TaggedOutput(
                STATS,
                WindowedValue(("count", dict(self._tally)), GlobalWindow().max_timestamp(),
                              [GlobalWindow()]),
            )
            self._tally = collections.Counter()


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
        head = head[:200].decode("utf-8", "replace")
    record = {"source": source, "line": line, "reason": reason, "detail": detail,
              "excerpt": head[:200]}
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
    manifest = dict(header)
    manifest.update(merged)
    if finish is not None:
        manifest.update(finish(merged))
    manifest["versions"] = library_versions()
    manifest["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds")
    write_json(path, manifest)
    _LOG.info("wrote %s", path)
    return manifest


def write_json(path: str, value: dict) -> None:
    """Writes a JSON file (local or ``gs://``) under a temporary name, then renames it:
    a reader never sees half of it."""
    temp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    with FileSystems.create(temp, mime_type="application/json") as f:
        f.write(json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8") + b"\n")
    FileSystems.rename([temp], [path])


class CollectManifest(beam.PTransform):
    """Gathers every stats element and writes the manifest JSON.

    Args:
      path: where to write it.
      header: what is known when the pipeline is built (command, config, seed).
      finish: optional ``f(merged) -> dict`` adding derived figures (totals,
        the accounting check) from the merged counts and file lists.
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


def read_manifest(path: str) -> dict:
    """Reads a manifest written by :class:`CollectManifest`."""
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


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
