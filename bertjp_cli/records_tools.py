"""``bertjp inspect`` and ``bertjp validate``: read pretraining TFRecords without TensorFlow."""

from __future__ import annotations

import argparse
import json
import posixpath
import sys
from typing import Iterator

from bertjp.manifest import (
    VALIDATE_FIELDS,
    ManifestError,
    NotRecordsManifest,
    RecordsSpec,
    records_spec,
)
from bertjp.outputs import shard_problems
from bertjp.records import (
    FEATURE_NAMES,
    NotTFRecordError,
    RecordError,
    decode_example,
    iter_records,
)
from bertjp.streams import open_decompressed
from bertjp.vocab_files import read_vocab


def _open(path: str):
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    return open_decompressed(raw, path)[0]


def _records(path: str) -> Iterator[dict]:
    with _open(path) as f:
        for data in iter_records(f):
            yield decode_example(data)


def _ids_name(example: dict) -> tuple[str, str]:
    return FEATURE_NAMES[FEATURE_NAMES[True][0] in example]


def format_record(n: int, example: dict, vocab: list[str]) -> str:
    """One record as text: segments, with ``[MASK→label]``, ``{label}`` (kept) and
    ``⟨token→label⟩`` (random) at the masked positions."""
    ids_name, types_name = _ids_name(example)
    length = sum(example["input_mask"][1])
    ids = example[ids_name][1][:length]
    types = example[types_name][1][:length]
    weights = example["masked_lm_weights"][1]
    count = sum(1 for w in weights if w > 0)
    labels = dict(zip(example["masked_lm_positions"][1][:count],
                      example["masked_lm_ids"][1][:count], strict=True))

    def show(i: int, token_id: int) -> str:
        token = vocab[token_id] if 0 <= token_id < len(vocab) else f"<id {token_id}>"
        if i not in labels:
            return token
        label = vocab[labels[i]] if 0 <= labels[i] < len(vocab) else f"<id {labels[i]}>"
        if token == "[MASK]":
            return f"[MASK→{label}]"
        return f"{{{label}}}" if token_id == labels[i] else f"⟨{token}→{label}⟩"

    shown = [show(i, t) for i, t in enumerate(ids)]
    a = " ".join(s for s, t in zip(shown, types, strict=True) if t == 0)
    b = " ".join(s for s, t in zip(shown, types, strict=True) if t == 1)
    nsp = "random next" if example["next_sentence_labels"][1][0] else "actual next"
    return (f"#{n}  {length} tokens, {count} masked, {nsp}\n  A: {a}\n  B: {b}")


def _add_input_arguments(parser: argparse.ArgumentParser, shards_help: str) -> None:
    """``--input`` and its positional alias (the shards, as existing scripts pass them)."""
    parser.add_argument("--input", nargs="+", action="extend", default=[], metavar="GLOB",
                        help=shards_help + " (several values, or the flag repeated)")
    parser.add_argument("shards", nargs="*", metavar="GLOB",
                        help="the same as --input (kept for existing scripts)")


def _add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """``--verbose``: ``bertjp`` re-raises an error instead of printing one line."""
    parser.add_argument("--verbose", action="store_true",
                        help="show the traceback of an error")


def _patterns(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The shard patterns of ``--input`` and the positional alias, in order; exits 2
    (``parser.error``) when there are none."""
    patterns = [*args.input, *args.shards]
    if not patterns:
        parser.error("the following arguments are required: --input (or shards as "
                     "positional arguments)")
    return patterns


def _match(patterns: list[str]) -> tuple[dict[str, int], list[str]]:
    """``({path: size in bytes}, patterns that matched nothing)``; paths sorted, each once."""
    from apache_beam.io.filesystems import FileSystems

    matched: dict[str, int] = {}
    empty = []
    for pattern in patterns:  # one at a time: local and gs:// patterns may be mixed
        result = FileSystems.match([pattern])[0]
        if not result.metadata_list:
            empty.append(pattern)
        for metadata in result.metadata_list:
            matched[metadata.path] = metadata.size_in_bytes
    return dict(sorted(matched.items())), empty


def describe_record_error(path: str, err: Exception) -> str:
    """One line naming ``path`` and, when known, the record and byte offset of ``err``."""
    if isinstance(err, NotTFRecordError):
        return f"{path} is not a TFRecord file ({err.reason})"
    if isinstance(err, RecordError) and err.record is not None:
        where = " of the decompressed data" if path.endswith(".gz") else ""
        return f"{path}: record {err.record} at byte offset {err.offset:,}{where}: {err.reason}"
    return f"{path}: {err}"


def inspect_main(argv: list[str]) -> int:
    """``bertjp inspect``: prints the first ``--limit`` records of the shards as text."""
    parser = argparse.ArgumentParser(
        prog="bertjp inspect", allow_abbrev=False,
        description="Print pretraining records as text. Masked positions show "
        "[MASK→label], {label} (token kept) or ⟨replacement→label⟩ (random token).")
    _add_input_arguments(parser, "shards: .tfrecord.gz (or plain .tfrecord) files or globs, "
                         "local or gs://")
    parser.add_argument("--vocab", required=True, help="tokenizer directory or vocab.txt")
    parser.add_argument("--limit", type=int, default=10,
                        help="records to print, over all files (default 10)")
    _add_verbose_argument(parser)
    args = parser.parse_intermixed_args(argv)
    patterns = _patterns(parser, args)
    matched, empty = _match(patterns)
    if empty:
        raise FileNotFoundError(f"--input {empty[0]!r} matches no file")
    from apache_beam.io.filesystems import FileSystems

    vocab = read_vocab(args.vocab, FileSystems.open)
    printed = 0
    for shard in matched:
        if printed >= args.limit:
            break
        if len(matched) > 1:
            print(f"== {shard}")
        try:
            for n, example in enumerate(_records(shard)):
                if printed >= args.limit:
                    break
                print(format_record(n, example, vocab))
                printed += 1
        except RecordError as err:
            raise ValueError(describe_record_error(shard, err)) from err
    return 0


def check_record(example: dict, seq: int, preds: int, vocab_size: int) -> list[str]:
    """Problems of one record against the configuration (empty when valid)."""
    ids_name, types_name = _ids_name(example)
    expected = {ids_name: ("int64", seq), types_name: ("int64", seq), "input_mask": ("int64", seq),
                "masked_lm_positions": ("int64", preds), "masked_lm_ids": ("int64", preds),
                "masked_lm_weights": ("float", preds), "next_sentence_labels": ("int64", 1)}
    problems = [f"{name}: expected {kind} x {n}, got {example.get(name, ('missing', []))[0]} x "
                f"{len(example.get(name, ('', []))[1])}"
                for name, (kind, n) in expected.items()
                if example.get(name, ("missing", []))[0] != kind or len(example[name][1]) != n]
    if set(example) != set(expected):
        problems.append(f"unexpected features {sorted(set(example) - set(expected))}")
    if problems:
        return problems
    mask = example["input_mask"][1]
    length = sum(mask)
    if mask != [1] * length + [0] * (seq - length):
        problems.append("input_mask is not a run of 1s then 0s")
    ids = example[ids_name][1]
    if any(not 0 <= i < vocab_size for i in ids) or any(ids[length:]):
        problems.append("input ids out of the vocabulary or non-zero padding")
    types = example[types_name][1][:length]
    if sorted(types) != types or set(types) - {0, 1}:
        problems.append("segment ids are not 0s then 1s")
    weights = example["masked_lm_weights"][1]
    count = sum(1 for w in weights if w == 1.0)
    if weights != [1.0] * count + [0.0] * (preds - count) or count == 0:
        problems.append("masked_lm_weights are not 1.0 for predictions then 0.0")
    positions = example["masked_lm_positions"][1][:count]
    if positions != sorted(set(positions)) or any(not 0 < p < length - 1 for p in positions):
        problems.append("masked positions not sorted, repeated or outside the tokens")
    if any(not 0 <= i < vocab_size for i in example["masked_lm_ids"][1]):
        problems.append("masked_lm_ids out of the vocabulary")
    if example["next_sentence_labels"][1][0] not in (0, 1):
        problems.append("next_sentence_labels is not 0 or 1")
    return problems


def load_pretraining_manifest(path: str) -> RecordsSpec:
    """The records' facts of a ``bertjp pretraining-data`` manifest at ``path``.

    Raises:
      ValueError: ``path`` cannot be read, is not JSON, or not a pretraining-data
        manifest (the message names the file, the missing field and, when known, the
        command that wrote it).
    """
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.open(path) as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as err:  # BeamIOError too
        reason = (str(err).strip().splitlines() or [type(err).__name__])[-1]
        raise ValueError(f"--manifest {path} cannot be read ({reason})") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--manifest {path} is not JSON (line {err.lineno}, column "
                         f"{err.colno}: {err.msg})") from None
    try:
        return records_spec(data, path, VALIDATE_FIELDS)
    except NotRecordsManifest as err:
        written = f", it was written by `bertjp {err.command}`" if err.command else ""
        raise ValueError(
            f"--manifest {path} is not a pretraining-data manifest (it has no "
            f"{err.missing[0][1]!r}{written}): pass the PREFIX.manifest.json that "
            "`bertjp pretraining-data --output PREFIX` wrote") from None
    except ManifestError as err:
        raise ValueError(f"--manifest {err}") from None


def check_shard(path: str, spec: RecordsSpec) -> tuple[int, int, list[str]]:
    """Reads every record of one shard and checks it against the manifest's ``spec``.

    Returns:
      ``(records, masked tokens, problems)``; a file that cannot be read to its end
      (truncated, corrupt, not TFRecord) adds one problem naming the record and byte
      offset, and the counts stop there.
    """
    seq, preds = spec.max_seq_length, spec.max_predictions_per_seq
    problems, count, masked = [], 0, 0
    try:
        for example in _records(path):
            for problem in check_record(example, seq, preds, spec.vocab_size):
                problems.append(f"{path} record {count}: {problem}")
            count += 1
            masked += int(sum(example["masked_lm_weights"][1]))
    except (RecordError, OSError) as err:
        problems.append(describe_record_error(path, err))
    return count, masked, problems


def validate_main(argv: list[str]) -> int:
    """``bertjp validate``: checks every record of the shards against the job's manifest;
    returns 1 on any problem."""
    parser = argparse.ArgumentParser(
        prog="bertjp validate", allow_abbrev=False,
        description="Check every record of pretraining shards against the job's manifest: "
        "features, dtypes and lengths, id ranges, masks, and the records and masked "
        "tokens per shard; the files matched must be exactly the manifest's shards, "
        "with its sizes. "
        "Exits 1 on any mismatch.")
    _add_input_arguments(parser, "shards: files or globs, local or gs://, e.g. "
                         "'gs://B/data/cc100-*.tfrecord.gz'")
    parser.add_argument("--manifest", required=True, help="the job's PREFIX.manifest.json")
    _add_verbose_argument(parser)
    args = parser.parse_intermixed_args(argv)
    patterns = _patterns(parser, args)
    spec = load_pretraining_manifest(args.manifest)
    seq, preds = spec.max_seq_length, spec.max_predictions_per_seq
    expected_counts = {posixpath.basename(r.path): r.instances for r in spec.shard_rows}
    expected_masked = {posixpath.basename(r.path): r.masked_tokens for r in spec.shard_rows
                       if r.masked_tokens is not None}
    matched, empty = _match(patterns)
    paths = list(matched)
    errors = [f"--input {pattern!r} matches no file" for pattern in empty]
    listed = {posixpath.basename(o.path) for o in spec.shards}
    if listed:
        errors += shard_problems(matched, spec.shards, args.manifest)
    total = 0
    for path in paths:
        count, masked, problems = check_shard(path, spec)
        errors += problems
        total += count
        name = path.rsplit("/", 1)[-1]
        if listed and name not in listed:
            continue  # reported above: a file the manifest does not list
        if expected_counts.get(name) != count:
            errors.append(f"{path}: {count} records, the manifest says "
                          f"{expected_counts.get(name, 'nothing')}")
        if name in expected_masked and expected_masked[name] != masked:
            errors.append(f"{path}: {masked} masked tokens, the manifest says "
                          f"{expected_masked[name]}")
    if not listed:  # an older manifest without "outputs": compare with its summary
        for name in sorted(set(expected_counts) - {p.rsplit('/', 1)[-1] for p in paths}):
            errors.append(f"{name}: in the manifest, not matched by {' '.join(patterns)}")
    for line in errors[:50]:
        print(line, file=sys.stderr)
    if errors:
        print(f"bertjp validate: {len(errors)} problem(s) in {len(paths)} file(s)", file=sys.stderr)
        return 1
    print(f"bertjp validate: {total:,} records in {len(paths)} file(s) match the manifest "
          f"(seq {seq}, {preds} predictions, vocabulary {spec.vocab_size:,})")
    return 0
