"""Reading inputs and handling paths, local or ``gs://`` (writing shards:
:mod:`pipelines.shards`).

``MatchInputs`` expands globs into distinct file paths. ``ReadFileFn`` is the base
of the readers: it opens a file through Beam's ``FileSystems``, decompresses it
with the standard library (a truncated file raises, naming the file), hashes its
raw bytes for the manifest and logs progress. The path helpers match, remove and
check files by their literal names and against the manifests beside them.
"""

from __future__ import annotations

import glob
import logging
import os
import posixpath
import shutil

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from bertjp import manifest as manifest_lib
from bertjp.manifest import Manifest
from bertjp.outputs import check_matched_files, glob_escape, has_glob
from bertjp.streams import LineTooLong, iter_lines, open_decompressed
from pipelines.stats import STATS, Progress, TallyDoFn, dead_letter

__all__ = [
    "InputLines",
    "MatchInputs",
    "ReadFileFn",
    "check_inputs_against_manifests",
    "expand_inputs",
    "match_literal",
    "matched_sizes",
    "remove_paths",
    "validate_inputs",
]

_LOG = logging.getLogger(__name__)


def matched_sizes(patterns) -> dict[str, int]:
    """``{path: size}`` of the files the patterns match (folders left out)."""
    sizes = {}
    for result in FileSystems.match(list(patterns)):
        for m in result.metadata_list:
            if not (m.path.endswith("/") or ("://" not in m.path and os.path.isdir(m.path))):
                sizes[m.path] = m.size_in_bytes
    return sizes


def match_literal(pattern: str) -> list[str]:
    """The files and folders a pattern matches, sorted (an empty list when none).

    Unlike ``FileSystems.match`` this finds local folders too, and on ``gs://`` the
    "folders" that hold matching objects (``*`` does not cross a ``/`` there).
    """
    if "://" not in pattern:
        return sorted(glob.glob(pattern))
    found = {m.path for m in FileSystems.match([pattern])[0].metadata_list}
    found |= {posixpath.dirname(m.path)
              for m in FileSystems.match([pattern + "/**"])[0].metadata_list}
    return sorted(found)


def _manifest_if_exists(path: str) -> Manifest | None:
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return manifest_lib.loads(f.read(), path)


def check_inputs_against_manifests(patterns) -> list[str]:
    """Problems of the files the patterns match against the manifests beside them: each
    ``PREFIX-SSSSS-of-NNNNN`` file must be one ``PREFIX.manifest.json`` lists, with its
    size, and a glob must match every file it lists (files named one by one may be a
    subset; see :mod:`bertjp.outputs`)."""
    named = frozenset(p for p in patterns if not has_glob(p))
    return check_matched_files(matched_sizes(patterns), _manifest_if_exists, named)


def remove_paths(paths) -> None:
    """Removes files and folders (recursively) by their literal names, local or ``gs://``;
    glob characters in a name are not patterns here."""
    for path in paths:
        if "://" not in path:
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.remove(path)
        elif not FileSystems.exists(path):
            FileSystems.delete([path.rstrip("/") + "/"])  # a "folder": every object under it
        else:
            FileSystems.delete([glob_escape(path)])


def validate_inputs(patterns) -> None:
    """Fails early, at construction, when a local pattern matches no file."""
    for pattern in patterns:
        if "://" in pattern:
            continue  # matched on the workers; a missing object fails the job there
        result = FileSystems.match([pattern])[0]
        if not [m for m in result.metadata_list if not os.path.isdir(m.path)]:
            raise FileNotFoundError(f"--input {pattern!r} matches no file")


class MatchInputs(beam.PTransform):
    """Expands file patterns into the distinct paths they match.

    A pattern that matches nothing fails the job, naming the pattern (local patterns
    are also checked before the job starts: :func:`validate_inputs`).

    Args:
      patterns: file paths or globs, local or ``gs://``.
    """

    def __init__(self, patterns):
        super().__init__()
        self._patterns = list(patterns)

    def expand(self, pbegin):
        return (
            pbegin
            | "Patterns" >> beam.Create(self._patterns)
            | "Match" >> fileio.MatchAll(fileio.EmptyMatchTreatment.DISALLOW)
            | "Path" >> beam.Map(_path_of)
            | "Distinct" >> beam.Distinct()  # also spreads files over workers
        )


def _path_of(metadata) -> str:
    """The path of a matched file's metadata."""
    return metadata.path


class ReadFileFn(TallyDoFn):
    """Base of the file readers: subclasses implement ``read(path, lines)``.

    ``read`` receives the numbered lines of the decompressed file (see
    :func:`bertjp.streams.iter_lines`) and yields outputs. This class adds the
    ``("input", {...})`` stats record (path, size, SHA-256, lines) and progress logs.
    """

    def __init__(self, max_line_bytes: int):
        super().__init__()
        self._max_line_bytes = max_line_bytes

    def read(self, path, lines):
        raise NotImplementedError

    def text_lines(self, path, lines):
        """The non-blank, valid UTF-8 lines as ``(line_number, raw, text)``.

        Each line is one record (``lines_in``); a too-long or invalid line is
        counted as dropped and yielded as a dead letter (a ``TaggedOutput``) instead.
        """
        for lineno, raw in lines:
            if isinstance(raw, LineTooLong):
                self.count("lines_in")
                self.count("dropped.line_too_long")
                yield dead_letter(path, lineno, "line_too_long", f"{raw.size} bytes", raw.head)
                continue
            if not raw.strip():
                self.count("blank_lines")
                continue
            self.count("lines_in")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                self.count("dropped.invalid_utf8")
                yield dead_letter(path, lineno, "invalid_utf8",
                                  f"{err.reason} at byte {err.start}", raw)
                continue
            yield lineno, raw, text

    def process(self, path):
        with InputLines(path, self._max_line_bytes) as lines:
            yield from self.read(path, lines)
        self.count("input_files")
        self.count("lines_read", lines.count)
        yield beam.pvalue.TaggedOutput(STATS, ("input", lines.stats))


class InputLines:
    """A context manager over the numbered lines of one input file.

    Opens ``path`` through Beam's ``FileSystems`` (local or ``gs://``), decompresses
    it (see :func:`bertjp.streams.open_decompressed`), logs progress, and after the
    ``with`` block offers ``stats``: the file's size, SHA-256 and line count.

    Iterating yields ``(line_number, bytes | LineTooLong)``.
    """

    def __init__(self, path: str, max_line_bytes: int):
        self._path = path
        self._max_line_bytes = max_line_bytes
        self.count = 0
        self.stats = None

    def __enter__(self):
        self._raw = FileSystems.open(self._path, compression_type=CompressionTypes.UNCOMPRESSED)
        self._stream, self._hasher = open_decompressed(self._raw, self._path)
        return self

    def __iter__(self):
        progress = Progress(f"reading {self._path}")
        for lineno, line in iter_lines(self._stream, self._path, self._max_line_bytes):
            self.count = lineno
            if lineno & 0xFFFF == 0:
                progress.maybe_log(lineno, self._hasher.bytes_read)
            yield lineno, line

    def __exit__(self, exc_type, *_):
        try:
            if exc_type is None:
                size, digest = self._hasher.finish()
                self.stats = {"path": self._path, "bytes": size, "sha256": digest,
                              "lines": self.count}
                _LOG.info("read %s: %d lines, %d bytes", self._path, self.count, size)
        finally:
            self._raw.close()
        return False


def expand_inputs(patterns) -> list[str]:
    """The distinct files the patterns match, in pattern order, sorted within each."""
    paths = []
    for result in FileSystems.match(list(patterns)):
        for path in sorted(m.path for m in result.metadata_list):
            if path not in paths:
                paths.append(path)
    return paths
