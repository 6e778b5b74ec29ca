"""Streaming line readers over (possibly compressed) binary files.

Everything here works on an already opened binary file object, so it serves
local files and ``gs://`` objects alike (the pipelines open files through Beam's
``FileSystems``). Decompression uses the standard library, which — unlike a
silent end of stream — raises on a truncated ``.gz``/``.bz2``/``.xz`` file; we turn
that into :class:`CorruptInputError` naming the file and position.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import hashlib
import io
import lzma
import zlib
from typing import BinaryIO, Iterator

from bertjp.defaults import EXCERPT_CHARS, MAX_LINE_BYTES

__all__ = [
    "CorruptInputError",
    "HashingReader",
    "LineTooLong",
    "compression_of",
    "iter_lines",
    "open_decompressed",
]

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)
_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bzip2", ".xz": "xz", ".lzma": "xz"}
_BUFFER = 1 << 20


class CorruptInputError(IOError):
    """A compressed input ended early or is corrupt. The message names the file."""


@dataclasses.dataclass(frozen=True)
class LineTooLong:
    """Stands for a line longer than the reader's limit (its bytes are not kept).

    Attributes:
      size: the line's length in bytes, newline excluded.
      head: its first bytes, for the dead-letter record.
    """

    size: int
    head: bytes


class HashingReader(io.RawIOBase):
    """A raw reader that counts and SHA-256-hashes the bytes read through it."""

    def __init__(self, fileobj: BinaryIO):
        super().__init__()
        self._f = fileobj
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._f.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.bytes_read += n
        return n

    def finish(self) -> tuple[int, str]:
        """Reads and hashes whatever the decompressor left unread.

        Returns:
          ``(size, sha256_hex)`` of the whole file.
        """
        while True:
            data = self._f.read(_BUFFER)
            if not data:
                break
            self.sha256.update(data)
            self.bytes_read += len(data)
        return self.bytes_read, self.sha256.hexdigest()


def compression_of(path: str, head: bytes) -> str:
    """Returns ``gzip``, ``bzip2``, ``xz`` or ``none`` from the suffix, else the magic bytes."""
    lowered = path.lower()
    for suffix, kind in _SUFFIXES.items():
        if lowered.endswith(suffix):
            return kind
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return "none"


def open_decompressed(raw: BinaryIO, path: str) -> tuple[BinaryIO, HashingReader]:
    """Wraps ``raw`` in a hashing reader and the right decompressor.

    Args:
      raw: the file, opened in binary mode without decompression.
      path: its name, for the suffix and for error messages.

    Returns:
      ``(stream, hasher)``: a buffered binary stream of the decompressed bytes and
      the :class:`HashingReader` that sees the file's raw bytes.
    """
    hasher = HashingReader(raw)
    buffered = io.BufferedReader(hasher, buffer_size=_BUFFER)
    kind = compression_of(path, buffered.peek(8)[:8])
    if kind == "gzip":
        return gzip.GzipFile(fileobj=buffered, mode="rb"), hasher
    if kind == "bzip2":
        return bz2.BZ2File(buffered, mode="rb"), hasher
    if kind == "xz":
        return lzma.LZMAFile(buffered, mode="rb"), hasher
    return buffered, hasher


def iter_lines(
    stream: BinaryIO, path: str, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes | LineTooLong]]:
    """Yields ``(line_number, line)`` for every ``\\n``-terminated line of ``stream``.

    Line numbers start at 1; the newline is removed; a last line without a newline
    is yielded too. A line longer than ``max_line_bytes`` is never held in memory:
    it is yielded as a :class:`LineTooLong`.

    Raises:
      CorruptInputError: the compressed stream is truncated or corrupt.
    """
    lineno = 0
    try:
        while True:
            line = stream.readline(max_line_bytes + 1)
            if not line:
                return
            lineno += 1
            if line.endswith(b"\n"):
                yield lineno, line[:-1]
            elif len(line) <= max_line_bytes:
                yield lineno, line  # the file's last line, without a newline
            else:
                yield lineno, _skip_long_line(stream, line, max_line_bytes)
    except (EOFError, OSError, zlib.error, lzma.LZMAError) as err:
        raise CorruptInputError(
            f"{path}: compressed input is truncated or corrupt after line {lineno} "
            f"({type(err).__name__}: {err})"
        ) from err


def _skip_long_line(stream: BinaryIO, first: bytes, limit: int) -> LineTooLong:
    size = len(first)
    while True:
        chunk = stream.readline(limit + 1)
        if not chunk:
            return LineTooLong(size, first[:EXCERPT_CHARS])
        if chunk.endswith(b"\n"):
            return LineTooLong(size + len(chunk) - 1, first[:EXCERPT_CHARS])
        size += len(chunk)
