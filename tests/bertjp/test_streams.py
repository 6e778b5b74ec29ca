import bz2
import gzip
import hashlib
import io
import lzma

import pytest

from bertjp.streams import (
    CorruptInputError,
    LineTooLong,
    compression_of,
    iter_lines,
    open_decompressed,
)

TEXT = b"".join(b"line %d \xe6\x97\xa5\xe6\x9c\xac\n" % i for i in range(5000))
COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress, "": bytes}


def read_all(data: bytes, name: str, max_line_bytes=1 << 20):
    stream, hasher = open_decompressed(io.BytesIO(data), name)
    lines = list(iter_lines(stream, name, max_line_bytes))
    return lines, hasher.finish()


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_reads_every_line_and_hashes_the_raw_file(suffix):
    data = COMPRESSORS[suffix](TEXT)
    lines, (size, digest) = read_all(data, "f.txt" + suffix)
    assert [n for n, _ in lines] == list(range(1, 5001))
    assert b"".join(line + b"\n" for _, line in lines) == TEXT
    assert (size, digest) == (len(data), hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_truncated_compressed_file_raises_naming_the_file(suffix):
    data = COMPRESSORS[suffix](TEXT)[:-40]
    with pytest.raises(CorruptInputError, match=r"dump\.json" + suffix.replace(".", r"\.")):
        read_all(data, "dump.json" + suffix)


def test_compression_is_sniffed_without_a_suffix():
    assert compression_of("data", gzip.compress(b"x")[:8]) == "gzip"
    assert compression_of("data", lzma.compress(b"x")[:8]) == "xz"
    assert compression_of("data", b"plain text") == "none"
    lines, _ = read_all(gzip.compress(b"a\nb"), "no-suffix")
    assert lines == [(1, b"a"), (2, b"b")]  # a last line without newline counts


def test_giant_line_is_skipped_unread_and_reading_goes_on():
    data = b"short\n" + b"x" * 100_000 + b"\nafter\n"
    lines, _ = read_all(data, "f.txt", max_line_bytes=1000)
    assert lines[0] == (1, b"short")
    assert lines[1][0] == 2 and isinstance(lines[1][1], LineTooLong)
    assert lines[1][1].size == 100_000 and lines[1][1].head == b"x" * 200
    assert lines[2] == (3, b"after")
