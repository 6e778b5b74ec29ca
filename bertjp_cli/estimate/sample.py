"""Reading a sample of the input: the first lines of the first file, and what it is.

The sample is read through Beam's ``FileSystems`` (local or ``gs://``) and
decompressed with :func:`bertjp.streams.open_decompressed`, as the pipelines read
their inputs; its decompression ratio scales the matched files' size to the bytes
the jobs will process.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import io
import lzma
import time
import zlib
from typing import Sequence

from bertjp import cirrus
from bertjp.streams import CorruptInputError, LineTooLong, iter_lines, open_decompressed

__all__ = ["KINDS", "MB", "Sample", "detect_kind", "match_inputs", "read_sample"]

MB = 1_000_000
KINDS = {"wiki": "Wikipedia Cirrussearch dump", "cc100": "CC-100 text"}
"""The inputs the estimate knows, by ``--kind``."""
_SMALL_READ = 64 << 10
_RATIO_MIN_BYTES = 4_000_000  # compressed bytes read for the decompression ratio


@dataclasses.dataclass
class Sample:
    """The first lines of an input file, decompressed.

    Attributes:
      path: the file.
      lines: ``(line_number, bytes | LineTooLong)`` as :func:`bertjp.streams.iter_lines`.
      nbytes: decompressed bytes of those lines, newlines included.
      read_seconds: CPU seconds to read, decompress, hash and split them.
      compression: ``gzip``, ``bzip2``, ``xz`` or ``none``.
      ratio: decompressed bytes per compressed byte (1 for plain text).
      ratio_bytes: the compressed bytes the ratio was measured on.
      whole_file: the ratio was measured on the whole file.
    """

    path: str
    lines: list
    nbytes: int
    read_seconds: float
    compression: str
    ratio: float
    ratio_bytes: int
    whole_file: bool


class _SmallReads(io.RawIOBase):
    """Hands out at most 64 KiB per read.

    The compressed bytes read then stay close to the bytes the decompressor has
    used (for the decompression ratio).
    """

    def __init__(self, f):
        super().__init__()
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._f.read(min(len(buffer), _SMALL_READ))
        buffer[: len(data)] = data
        return len(data)


def _compression(stream) -> str:
    """The compression of a stream :func:`open_decompressed` returned."""
    kinds = ((gzip.GzipFile, "gzip"), (bz2.BZ2File, "bzip2"), (lzma.LZMAFile, "xz"))
    return next((name for cls, name in kinds if isinstance(stream, cls)), "none")


def _first_lines(stream, path: str, sample_bytes: int) -> tuple[list, int]:
    """Whole lines until ``sample_bytes`` decompressed bytes are read; and their bytes."""
    lines, nbytes = [], 0
    for lineno, line in iter_lines(stream, path):
        lines.append((lineno, line))
        nbytes += (line.size if isinstance(line, LineTooLong) else len(line)) + 1
        if nbytes >= sample_bytes:
            break
    return lines, nbytes


def _drain(stream, hasher, path: str) -> tuple[int, bool]:
    """Decompresses on until 4 MB of compressed input are read.

    Returns:
      The decompressed bytes, and whether the file ended.
    """
    total = 0
    try:
        while hasher.bytes_read < _RATIO_MIN_BYTES:
            block = stream.read(1 << 20)
            if not block:
                return total, True
            total += len(block)
    except (EOFError, OSError, zlib.error, lzma.LZMAError) as err:
        raise CorruptInputError(f"{path}: compressed input is truncated or corrupt "
                                f"({type(err).__name__}: {err})") from err
    return total, False


def read_sample(path: str, sample_bytes: int) -> Sample:
    """Reads the first ``sample_bytes`` decompressed bytes (whole lines) of ``path``.

    The file is opened through Beam's ``FileSystems`` (local or ``gs://``) and
    decompressed with :func:`bertjp.streams.open_decompressed`, as the pipelines do.

    Raises:
      CorruptInputError: the compressed file is truncated or corrupt.
    """
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    try:
        stream, hasher = open_decompressed(_SmallReads(raw), path)
        start = time.process_time()
        lines, nbytes = _first_lines(stream, path, sample_bytes)
        read_seconds = time.process_time() - start
        kind = _compression(stream)
        if kind == "none":
            return Sample(path, lines, nbytes, read_seconds, kind, 1.0, nbytes, False)
        more, ended = _drain(stream, hasher, path)
    finally:
        raw.close()
    ratio = (nbytes + more) / max(1, hasher.bytes_read)
    return Sample(path, lines, nbytes, read_seconds, kind, ratio, hasher.bytes_read, ended)


def match_inputs(patterns: Sequence[str]) -> list[tuple[str, int]]:
    """The distinct files the patterns match, with their sizes in bytes.

    Raises:
      FileNotFoundError: a pattern matches no file (or cannot be matched).
    """
    from pipelines.io import matched_sizes

    files: dict[str, int] = {}
    for pattern in patterns:
        try:
            found = matched_sizes([pattern])
        except Exception as err:  # pylint: disable=broad-except
            raise FileNotFoundError(f"--input {pattern!r}: {err}") from err
        if not found:
            raise FileNotFoundError(f"--input {pattern!r} matches no file")
        files.update((p, s) for p, s in sorted(found.items()) if p not in files)
    return list(files.items())


def detect_kind(lines) -> str:
    """What the lines are: ``wiki`` or ``cc100``.

    ``wiki`` when the first non-blank line is a Cirrussearch action or page line.
    """
    for _, raw in lines:
        if isinstance(raw, LineTooLong) or not raw.strip():
            continue
        try:
            cirrus.parse_line(raw)
        except cirrus.BadRecord:
            return "cc100"
        return "wiki"
    return "cc100"
