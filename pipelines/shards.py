"""Writing balanced, deterministic shards, local or ``gs://``.

``WriteShards`` takes ``(key, bytes)`` records and writes ``N`` files balanced in
size, each holding a contiguous key range in key order (see
:mod:`bertjp.sharding`). Records are grouped into chunks of bounded size, each
chunk is sorted and written to a temporary part (:class:`WriteChunkFn`), and one
step per shard concatenates its parts in order into a temporary file that is
renamed to the shard's name when complete (:class:`FinalizeShardFn`), compressing
it if asked. The files are therefore byte-identical whatever the runner and worker
count, no worker holds more than one chunk, and an interrupted job leaves no
partial shard under a final name.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import logging
import posixpath
import uuid

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from bertjp import sharding
from bertjp.defaults import CHUNK_BYTES, GZIP_LEVEL
from pipelines.io import remove_paths
from pipelines.stats import STATS

__all__ = [
    "FinalizeShardFn",
    "HashingWriter",
    "WriteChunkFn",
    "WriteShards",
    "batch_bins",
    "shard_path",
    "split_batch",
]

_LOG = logging.getLogger(__name__)
_BLOCK = 1 << 20


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


def batch_bins(batch) -> dict:
    """The histogram (bin → bytes) of a batch of ``(key, bytes, ...)`` records."""
    bins = collections.Counter()
    for record in batch:
        bins[sharding.bin_of(record[0])] += len(record[1])
    return bins


def split_batch(batch, plan):
    """A batch's records grouped by the chunk the plan puts them in: ``(chunk, records)``."""
    chunks = collections.defaultdict(list)
    for record in batch:
        chunks[plan.chunk_of(record[0])].append(record)
    return chunks.items()


class WriteChunkFn(beam.DoFn):
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


class HashingWriter:
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


class FinalizeShardFn(beam.DoFn):
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
            hashed = HashingWriter(raw)
            out = (gzip.GzipFile(filename="", mode="wb", fileobj=hashed, compresslevel=GZIP_LEVEL,
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


def _bin_size(record) -> tuple[int, int]:
    """A record's histogram bin and size."""
    return sharding.bin_of(record[0]), len(record[1])


def _to_chunk(record, plan):
    """``(chunk, record)``: the write chunk the plan gives the record's key."""
    return plan.chunk_of(record[0]), record


def _every_shard(plan) -> list:
    """``(shard, None)`` for every shard, so that a shard without records is written too."""
    return [(shard, None) for shard in range(plan.num_shards)]


def _with_role(stats, role: str):
    """A file's ``("output", {...})`` stats with its role."""
    kind, value = stats
    return kind, {**value, "role": role}


def _remove_temp_dir(temp_dir: str) -> None:
    """Removes a writer's temporary folder; a failure is only a warning."""
    try:
        if temp_dir.startswith("gs://") or FileSystems.exists(temp_dir):
            remove_paths([temp_dir])
    except Exception as err:  # pylint: disable=broad-except
        _LOG.warning("could not remove the temporary folder %s: %s", temp_dir, err)


def _clean_up_after(stats: list, temp_dir: str) -> list:
    """Removes the temporary folder once every file is final; passes the stats on."""
    _remove_temp_dir(temp_dir)
    return stats


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

    def __init__(self, paths, compress: bool = False, chunk_bytes: int = CHUNK_BYTES,
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
        plan = self._plan(records)
        plan_side = beam.pvalue.AsSingleton(plan)
        parts = self._write_chunks(records, plan_side)
        written = self._finalize(parts, plan)
        return (
            written
            | "Role" >> beam.Map(_with_role, self._role)
            | "AfterAll" >> beam.combiners.ToList()
            | "Cleanup" >> beam.FlatMap(_clean_up_after, self._temp_dir)
        )

    def _plan(self, records):
        """The :class:`bertjp.sharding.ShardPlan`, from a histogram of the record sizes."""
        return (
            records
            | "BinSizes" >> beam.Map(batch_bins if self._batched else _bin_size)
            | "Histogram" >> beam.CombineGlobally(_BinSizes())
            | "Plan" >> beam.Map(sharding.plan_shards, len(self._paths), self._chunk_bytes)
        )

    def _write_chunks(self, records, plan_side):
        """Each chunk's records, sorted, in a temporary part: ``(shard, part)``."""
        if self._batched:
            chunked = records | "ToChunk" >> beam.FlatMap(split_batch, plan=plan_side)
        else:
            chunked = records | "ToChunk" >> beam.Map(_to_chunk, plan=plan_side)
        return (
            chunked
            | "GroupChunks" >> beam.GroupByKey()
            | "WriteChunks" >> beam.ParDo(
                WriteChunkFn(self._temp_dir, self._batched, self._count_name is not None),
                plan=plan_side)
        )

    def _finalize(self, parts, plan):
        """Every shard's parts concatenated into its file; the files' stats."""
        every_shard = plan | "EveryShard" >> beam.FlatMap(_every_shard)
        written = (
            (parts, every_shard)
            | "Parts" >> beam.Flatten()
            | "GroupShards" >> beam.GroupByKey()
            | "Finalize" >> beam.ParDo(
                FinalizeShardFn(self._paths, self._compress, self._count_name,
                                 self._temp_dir))
            .with_outputs(STATS)
        )
        return written[STATS]
