"""Reading inputs and writing balanced, deterministic shards, local or ``gs://``.

``MatchInputs`` expands globs into distinct file paths. ``ReadFileFn`` is the base
of the readers: it opens a file through Beam's ``FileSystems``, decompresses it
with the standard library (a truncated file raises, naming the file), hashes its
raw bytes for the manifest and logs progress.

``WriteShards`` takes ``(key, bytes)`` records and writes ``N`` files balanced in
size, each holding a contiguous key range in key order (see
:mod:`bertjp.sharding`). Records are grouped into chunks of bounded size, each
chunk is sorted and written to a temporary part, and one step per shard
concatenates its parts in order into the final file, compressing it if asked.
The files are therefore byte-identical whatever the runner and worker count,
and no worker holds more than one chunk.
"""

from __future__ import annotations

import collections
import glob
import gzip
import hashlib
import logging
import os
import posixpath
import shutil
import uuid

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from bertjp import sharding
from bertjp.outputs import check_matched_files, glob_escape, has_glob
from bertjp.streams import LineTooLong, iter_lines, open_decompressed
from pipelines.stats import STATS, Progress, TallyDoFn, dead_letter

__all__ = [
    "InputLines",
    "MatchInputs",
    "ReadFileFn",
    "WriteShards",
    "check_inputs_against_manifests",
    "expand_inputs",
    "match_literal",
    "matched_sizes",
    "remove_paths",
    "shard_path",
    "validate_inputs",
]

_LOG = logging.getLogger(__name__)
_BLOCK = 1 << 20


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


def _load_json_if_exists(path: str) -> dict | None:
    import json

    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        try:
            value = json.loads(f.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a JSON manifest: {err}") from None
    return value if isinstance(value, dict) else None


def check_inputs_against_manifests(patterns) -> list[str]:
    """Problems of the files the patterns match against the manifests beside them: each
    ``PREFIX-SSSSS-of-NNNNN`` file must be one ``PREFIX.manifest.json`` lists, with its
    size, and a glob must match every file it lists (files named one by one may be a
    subset; see :mod:`bertjp.outputs`)."""
    named = frozenset(p for p in patterns if not has_glob(p))
    return check_matched_files(matched_sizes(patterns), _load_json_if_exists, named)


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
    """Expands file patterns into the distinct paths they match, sorted."""

    def __init__(self, patterns):
        super().__init__()
        self._patterns = list(patterns)

    def expand(self, pbegin):
        return (
            pbegin
            | "Patterns" >> beam.Create(self._patterns)
            # A pattern that matches nothing fails the job, naming the pattern (local
            # patterns are also checked before the job starts: validate_inputs).
            | "Match" >> fileio.MatchAll(fileio.EmptyMatchTreatment.DISALLOW)
            | "Path" >> beam.Map(lambda metadata: metadata.path)
            | "Distinct" >> beam.Distinct()  # also spreads files over workers
        )


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

        Each line is one record (``documents_in``); a too-long or invalid line is
        counted as dropped and yielded as a dead letter (a ``TaggedOutput``) instead.
        """
        for lineno, raw in lines:
            if isinstance(raw, LineTooLong):
                self.count("documents_in")
                self.count("dropped.line_too_long")
                yield dead_letter(path, lineno, "line_too_long", f"{raw.size} bytes", raw.head)
                continue
            if not raw.strip():
                self.count("blank_lines")
                continue
            self.count("documents_in")
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


def shard_path(prefix: str, shard: int, num_shards: int, suffix: str) -> str:
    """``PREFIX-00003-of-00008SUFFIX``."""
    return f"{prefix}-{shard:05d}-of-{num_shards:05d}{suffix}"


class _BinSizes(beam.CombineFn):
    def create_accumulator(self):
        return collections.Counter()

    def add_input(self, acc, element):
        if isinstance(element, dict):  # a batch's histogram
            acc.update(element)
        else:
            acc[element[0]] += element[1]
        return acc

    def merge_accumulators(self, accumulators):
        merged = collections.Counter()
        for acc in accumulators:
            merged.update(acc)
        return merged

    def extract_output(self, acc):
        return dict(acc)


def _batch_bins(batch) -> dict:
    bins = collections.Counter()
    for record in batch:
        bins[sharding.bin_of(record[0])] += len(record[1])
    return bins


def _split_batch(batch, plan):
    chunks = collections.defaultdict(list)
    for record in batch:
        chunks[plan.chunk_of(record[0])].append(record)
    return chunks.items()


class _WriteChunkFn(beam.DoFn):
    """Sorts one chunk's records and writes them to a temporary part file."""

    def __init__(self, temp_dir: str, batched: bool, counted: bool):
        super().__init__()
        self._temp_dir = temp_dir
        self._batched = batched
        self._counted = counted

    def process(self, element, plan):
        chunk, records = element
        if self._batched:
            records = [r for batch in records for r in batch]
        records = sorted(records)
        path = posixpath.join(self._temp_dir, f"chunk-{chunk:07d}")
        lines = size = 0
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            for record in records:
                payload = record[1]
                f.write(payload)
                size += len(payload)
                lines += payload.count(b"\n")
        counted = sum(r[2] for r in records) if self._counted else 0
        yield plan.chunk_shards[chunk], (chunk, path, len(records), size, lines, counted)


class _HashingWriter:
    """Counts and hashes the bytes written to a file."""

    def __init__(self, f):
        self._f = f
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha256.update(data)
        self.size += len(data)
        return self._f.write(data)

    def flush(self):
        pass


class _FinalizeShardFn(beam.DoFn):
    """Concatenates a shard's parts in chunk order into its final file."""

    def __init__(self, paths, compress: bool, count_name: str | None, temp_dir: str):
        super().__init__()
        self._paths = paths
        self._compress = compress
        self._count_name = count_name
        self._temp_dir = temp_dir

    def process(self, element):
        shard, parts = element
        parts = sorted(p for p in parts if p is not None)
        path = self._paths[shard]
        # Written beside the parts, then renamed: a shard appears under its final name
        # only when it is complete (an interrupted job leaves no partial shard).
        temp = posixpath.join(self._temp_dir, f"shard-{shard:05d}")
        content = hashlib.sha256()
        with FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
            hashed = _HashingWriter(raw)
            out = (gzip.GzipFile(filename="", mode="wb", fileobj=hashed, compresslevel=6,
                                 mtime=0) if self._compress else hashed)
            for _, part, *_ in parts:
                with FileSystems.open(part, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    while block := f.read(_BLOCK):
                        content.update(block)
                        out.write(block)
            if self._compress:
                out.close()
        FileSystems.rename([temp], [path])
        if parts:
            remove_paths([p[1] for p in parts])
        extra = {self._count_name: sum(p[5] for p in parts)} if self._count_name else {}
        yield beam.pvalue.TaggedOutput(STATS, ("output", {
            **extra,
            "path": path,
            "role": "shard",
            "shard": shard,
            "records": sum(p[2] for p in parts),
            "lines": sum(p[4] for p in parts),
            "content_bytes": sum(p[3] for p in parts),
            "content_sha256": content.hexdigest(),
            "bytes": hashed.size,
            "sha256": hashed.sha256.hexdigest(),
        }))


def _remove_temp_dir(_, temp_dir: str) -> None:
    try:
        if temp_dir.startswith("gs://") or FileSystems.exists(temp_dir):
            remove_paths([temp_dir])
    except Exception as err:  # pylint: disable=broad-except
        _LOG.warning("could not remove the temporary folder %s: %s", temp_dir, err)


class WriteShards(beam.PTransform):
    """Writes ``(key, bytes)`` records into ``num_shards`` balanced, key-ordered files.

    Args:
      paths: the final path of each shard (its length is the number of shards).
      compress: gzip each file (deterministic header: no name, mtime 0).
      chunk_bytes: the most record bytes a worker sorts at once (unless one
        16-bit key bin alone is larger).
      role: ``"shard"``, ``"dead_letter"``, ... recorded in the manifest.
      batched: the elements are lists of records (fewer, larger elements: much less
        per-element overhead when records are small and many).
      count_name: the records are ``(key, bytes, n)``; the ``n`` are summed per file
        and reported under this name (e.g. masked tokens per shard).

    Returns:
      The ``stats`` PCollection: one ``("output", {...})`` per file, with its
      records, lines, sizes and checksums.
    """

    def __init__(self, paths, compress: bool = False, chunk_bytes: int = 16 << 20,
                 role: str = "shard", batched: bool = False, count_name: str | None = None):
        super().__init__()
        self._paths = list(paths)
        self._compress = compress
        self._chunk_bytes = chunk_bytes
        self._role = role
        self._batched = batched
        self._count_name = count_name
        first = self._paths[0]
        self._temp_dir = f"{first}.tmp-{uuid.uuid4().hex[:12]}"

    def expand(self, records):
        num_shards = len(self._paths)
        if self._batched:
            bins = records | "BinSizes" >> beam.Map(_batch_bins)
        else:
            bins = records | "BinSizes" >> beam.Map(
                lambda kv: (sharding.bin_of(kv[0]), len(kv[1])))
        plan = (
            bins
            | "Histogram" >> beam.CombineGlobally(_BinSizes())
            | "Plan" >> beam.Map(sharding.plan_shards, num_shards, self._chunk_bytes)
        )
        plan_side = beam.pvalue.AsSingleton(plan)
        if self._batched:
            chunked = records | "ToChunk" >> beam.FlatMap(_split_batch, plan=plan_side)
        else:
            chunked = records | "ToChunk" >> beam.Map(
                lambda kv, p: (p.chunk_of(kv[0]), kv), p=plan_side)
        parts = (
            chunked
            | "GroupChunks" >> beam.GroupByKey()
            | "WriteChunks" >> beam.ParDo(
                _WriteChunkFn(self._temp_dir, self._batched, self._count_name is not None),
                plan=plan_side)
        )
        every_shard = plan | "EveryShard" >> beam.FlatMap(
            lambda p: [(s, None) for s in range(p.num_shards)])
        written = (
            (parts, every_shard)
            | "Parts" >> beam.Flatten()
            | "GroupShards" >> beam.GroupByKey()
            | "Finalize" >> beam.ParDo(
                _FinalizeShardFn(self._paths, self._compress, self._count_name,
                                 self._temp_dir))
            .with_outputs(STATS)
        )
        role = self._role
        return (
            written[STATS]
            | "Role" >> beam.Map(lambda kv: (kv[0], {**kv[1], "role": role}))
            | "AfterAll" >> beam.combiners.ToList()
            | "Cleanup" >> beam.FlatMap(
                lambda stats, tmp: (_remove_temp_dir(None, tmp), stats)[1], self._temp_dir)
        )
