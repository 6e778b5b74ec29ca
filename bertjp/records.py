"""``tf.train.Example`` records and TFRecord framing, without TensorFlow.

Model Garden's ``BertPretrainDataLoader`` reads, per example, fixed-length
``int64`` features (``input_word_ids``, ``input_mask``, ``input_type_ids``,
``masked_lm_positions``, ``masked_lm_ids``, ``next_sentence_labels``) and a
``float`` feature (``masked_lm_weights``); with v1 names the first and third are
``input_ids`` and ``segment_ids``. The protobuf wire format of that message is
small enough to write directly, which keeps TensorFlow (about 1 GB and 10 s of
import) out of the pipeline workers. Features are written in the reference's
order, so the bytes are the reference's.
"""

from __future__ import annotations

import gzip
import lzma
import struct
import zlib
from typing import Iterator, Sequence

__all__ = [
    "FEATURE_NAMES",
    "InstanceEncoder",
    "NotTFRecordError",
    "RecordError",
    "decode_example",
    "encode_example",
    "frame_record",
    "instance_features",
    "iter_records",
]

FEATURE_NAMES = {
    True: ("input_word_ids", "input_type_ids"),
    False: ("input_ids", "segment_ids"),
}
_MASK_DELTA = 0xA282EAD8


def _crc32c(data: bytes) -> int:
    global _crc32c  # replaced by the C implementation on first use
    from google_crc32c import value  # installed with the GCS client

    _crc32c = value
    return value(data)


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_SMALL = 1 << 16
_VARINTS: list[bytes] = []  # varints of 0 .. 65535, built on first use


def _packed_varints(values: Sequence[int]) -> bytes:
    """Concatenated varints; ids and positions take a table lookup each."""
    if not _VARINTS:
        _VARINTS.extend(_varint(v) for v in range(_SMALL))
    table = _VARINTS
    try:
        return b"".join([table[v] for v in values])
    except IndexError:  # a negative or large value: the general path
        return b"".join(_varint(v) if not 0 <= v < _SMALL else table[v] for v in values)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(values: Sequence[int] | Sequence[float], is_float: bool) -> bytes:
    if is_float:
        packed = struct.pack(f"<{len(values)}f", *values)
        return _field(2, _field(1, packed))  # Feature.float_list, FloatList.value
    return _field(3, _field(1, _packed_varints(values)))  # Feature.int64_list, Int64List.value


def encode_example(features: Sequence[tuple[str, Sequence, bool]]) -> bytes:
    """A serialized ``tf.train.Example`` of ``(name, values, is_float)`` features, in order."""
    entries = b"".join(
        _field(1, _field(1, name.encode()) + _field(2, _feature(values, is_float)))
        for name, values, is_float in features)
    return _field(1, entries)  # Example.features


def instance_features(input_ids: Sequence[int], segment_ids: Sequence[int],
                      masked_lm_positions: Sequence[int], masked_lm_ids: Sequence[int],
                      is_random_next: bool, max_seq_length: int,
                      max_predictions_per_seq: int, v2_names: bool = True):
    """The padded features of one instance, in the order of the reference's records.

    Raises:
      ValueError: the instance is longer than ``max_seq_length`` or has more than
        ``max_predictions_per_seq`` predictions.
    """
    if len(input_ids) > max_seq_length or len(masked_lm_positions) > max_predictions_per_seq:
        raise ValueError("instance longer than max_seq_length or max_predictions_per_seq")
    pad = max_seq_length - len(input_ids)
    pad_pred = max_predictions_per_seq - len(masked_lm_positions)
    ids_name, types_name = FEATURE_NAMES[v2_names]
    # The order TensorFlow's protobuf map serialization gives these seven keys (the same
    # for every record of the reference's files), so that our bytes equal its bytes.
    return [
        (ids_name, [*input_ids, *[0] * pad], False),
        ("masked_lm_ids", [*masked_lm_ids, *[0] * pad_pred], False),
        (types_name, [*segment_ids, *[0] * pad], False),
        ("next_sentence_labels", [1 if is_random_next else 0], False),
        ("masked_lm_positions", [*masked_lm_positions, *[0] * pad_pred], False),
        ("input_mask", [1] * len(input_ids) + [0] * pad, False),
        ("masked_lm_weights", [1.0] * len(masked_lm_ids) + [0.0] * pad_pred, True),
    ]


class InstanceEncoder:
    """Framed TFRecords of instances, fast: the bytes of
    ``frame_record(encode_example(instance_features(...)))`` built from per-id
    varints, with the features that depend only on lengths (mask, segment ids,
    weights, label) cached.

    Args:
      max_seq_length, max_predictions_per_seq: the padded lengths.
      v2_names: Model Garden's v2 names (``input_word_ids``...) or the v1 names.
    """

    def __init__(self, max_seq_length: int, max_predictions_per_seq: int,
                 v2_names: bool = True):
        if not _VARINTS:
            _VARINTS.extend(_varint(v) for v in range(_SMALL))
        if max_seq_length * 3 + 64 >= _SMALL:
            raise ValueError(f"max_seq_length {max_seq_length} is too large")
        self.max_seq_length = max_seq_length
        self.max_predictions_per_seq = max_predictions_per_seq
        ids_name, types_name = FEATURE_NAMES[v2_names]
        self._ids_key, self._types_key = (_field(1, n.encode()) for n in (ids_name, types_name))
        self._labels_key = _field(1, b"masked_lm_ids")
        self._positions_key = _field(1, b"masked_lm_positions")
        self._mask_key = _field(1, b"input_mask")
        self._next = [self._entry(_field(1, b"next_sentence_labels"), bytes((v,)))
                      for v in (0, 1)]
        self._cache: dict = {}

    @staticmethod
    def _entry(key: bytes, packed: bytes, feature_tag: bytes = b"\x1a") -> bytes:
        """A ``Features.feature`` map entry ``{key, Feature{int64_list|float_list{value}}}``."""
        v = _VARINTS
        n1 = len(packed)
        l1 = n1 + 1 + len(v[n1])  # the Int64List / FloatList message
        l2 = l1 + 1 + len(v[l1])  # the Feature message
        entry = key + b"\x12" + v[l2] + feature_tag + v[l1] + b"\x0a" + v[n1] + packed
        return b"\x0a" + v[len(entry)] + entry

    def _lengths_part(self, n: int, a_length: int, m: int) -> bytes:
        """Segment ids, ``next_sentence_labels`` excluded, mask and weights: they depend on
        the lengths only."""
        key = (n, a_length, m)
        part = self._cache.get(key)
        if part is None:
            pad, pad_pred = self.max_seq_length - n, self.max_predictions_per_seq - m
            types = self._entry(self._types_key, b"\x00" * a_length
                                + b"\x01" * (n - a_length) + b"\x00" * pad)
            mask = self._entry(self._mask_key, b"\x01" * n + b"\x00" * pad)
            weights = self._entry(_field(1, b"masked_lm_weights"),
                                  b"\x00\x00\x80\x3f" * m + b"\x00\x00\x00\x00" * pad_pred,
                                  feature_tag=b"\x12")
            part = self._cache[key] = (types, mask, weights)
        return part

    def encode(self, input_ids: Sequence[int], a_length: int,
               masked_lm_positions: Sequence[int], masked_lm_ids: Sequence[int],
               is_random_next: bool) -> bytes:
        """One framed record. ``a_length``: tokens of segment 0 (``[CLS] A [SEP]``).

        Raises:
          ValueError: the instance is longer than the padded lengths, or an id or
            position is outside 0..65535.
        """
        n, m = len(input_ids), len(masked_lm_positions)
        pad, pad_pred = self.max_seq_length - n, self.max_predictions_per_seq - m
        if pad < 0 or pad_pred < 0 or len(masked_lm_ids) != m or not 0 <= a_length <= n:
            raise ValueError("instance longer than max_seq_length or max_predictions_per_seq")
        table = _VARINTS
        try:
            ids = b"".join([table[i] for i in input_ids])
            labels = b"".join([table[i] for i in masked_lm_ids])
            positions = b"".join([table[i] for i in masked_lm_positions])
        except (IndexError, TypeError):
            raise ValueError("an id or position outside 0..65535") from None
        if min(input_ids, default=0) < 0 or min(masked_lm_ids, default=0) < 0:
            raise ValueError("an id or position outside 0..65535")
        types, mask, weights = self._lengths_part(n, a_length, m)
        zeros_pred = b"\x00" * pad_pred
        entries = b"".join((
            self._entry(self._ids_key, ids + b"\x00" * pad),
            self._entry(self._labels_key, labels + zeros_pred),
            types,
            self._next[1 if is_random_next else 0],
            self._entry(self._positions_key, positions + zeros_pred),
            mask,
            weights,
        ))
        return frame_record(b"\x0a" + table[len(entries)] + entries)


def _masked_crc(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC-32C, the data, its masked CRC-32C."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", _masked_crc(length)) + data
            + struct.pack("<I", _masked_crc(data)))


class RecordError(ValueError):
    """A TFRecord stream or an Example that cannot be decoded.

    Attributes:
      reason: what is wrong, without the position.
      record: the number of the record being read (from 0), or ``None``.
      offset: the byte offset of that record in the (decompressed) stream, or ``None``.
    """

    def __init__(self, reason: str, record: int | None = None, offset: int | None = None):
        where = f"record {record} at byte offset {offset}: " if record is not None else ""
        super().__init__(where + reason)
        self.reason, self.record, self.offset = reason, record, offset


class NotTFRecordError(RecordError):
    """The stream is not TFRecord data at all: its first record header is not one."""


# What a decompressing reader raises on a truncated or corrupt stream.
_STREAM_ERRORS = (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)


def _read(stream, size: int, n: int, offset: int) -> bytes:
    """``stream.read(size)``, with decompression errors turned into a :class:`RecordError`
    at record ``n``, byte ``offset`` (a :class:`NotTFRecordError` when the very first read
    finds no gzip data)."""
    try:
        return stream.read(size)
    except _STREAM_ERRORS as err:
        if n == 0 and offset == 0 and isinstance(err, gzip.BadGzipFile):
            raise NotTFRecordError(f"not gzip-compressed: {err}") from err
        raise RecordError(f"the compressed data is truncated or corrupt "
                          f"({type(err).__name__}: {err})", n, offset) from err


def iter_records(stream) -> Iterator[bytes]:
    """Yields the records of a TFRecord stream (a binary file object), checking CRCs.

    Raises:
      NotTFRecordError: the stream does not start with a record header (a text file,
        say): its first 12 bytes fail the length CRC, or it is shorter than that.
      RecordError: a truncated record or a CRC mismatch later on (with the record
        number and its byte offset in the stream).
    """
    n = offset = 0
    while True:
        header = _read(stream, 12, n, offset)
        if not header:
            return
        length = header[:8]
        if n == 0 and (len(header) < 12
                       or struct.unpack("<I", header[8:])[0] != _masked_crc(length)):
            raise NotTFRecordError(
                f"{len(header)} bytes, shorter than a record header" if len(header) < 12
                else "its first 12 bytes are not a record header: the length's CRC does not "
                "match")
        if len(header) < 12:
            raise RecordError("truncated header", n, offset)
        if struct.unpack("<I", header[8:])[0] != _masked_crc(length):
            raise RecordError("length CRC mismatch", n, offset)
        (size,) = struct.unpack("<Q", length)
        data = _read(stream, size, n, offset)
        footer = _read(stream, 4, n, offset)
        if len(data) < size or len(footer) < 4:
            raise RecordError("truncated data", n, offset)
        if struct.unpack("<I", footer)[0] != _masked_crc(data):
            raise RecordError("data CRC mismatch", n, offset)
        n += 1
        offset += 16 + size
        yield data


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise RecordError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes):
    """``(field_number, payload)`` of the length-delimited fields of a message."""
    pos = 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        if tag & 7 != 2:
            raise RecordError(f"unexpected wire type {tag & 7}")
        size, pos = _read_varint(data, pos)
        yield tag >> 3, data[pos:pos + size]
        pos += size


def decode_example(data: bytes) -> dict[str, tuple[str, list]]:
    """``{name: ("int64" | "float" | "bytes", values)}`` of a serialized Example."""
    out = {}
    for _, features in _fields(data):
        for _, entry in _fields(features):
            name, feature = "", b""
            for number, payload in _fields(entry):
                if number == 1:
                    name = payload.decode("utf-8")
                else:
                    feature = payload
            for kind, payload in _fields(feature):
                values = b"".join(p for _, p in _fields(payload))
                if kind == 3:
                    ints, pos = [], 0
                    while pos < len(values):
                        v, pos = _read_varint(values, pos)
                        ints.append(v - (1 << 64) if v >= 1 << 63 else v)
                    out[name] = ("int64", ints)
                elif kind == 2:
                    out[name] = ("float", list(struct.unpack(f"<{len(values) // 4}f", values)))
                else:
                    out[name] = ("bytes", [p for _, p in _fields(payload)])
            if name not in out:
                out[name] = ("empty", [])
    return out
