"""``bertjp inspect`` and ``bertjp validate``: read pretraining TFRecords without TensorFlow."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Iterator

from bertjp.records import FEATURE_NAMES, RecordError, decode_example, iter_records
from bertjp.streams import open_decompressed
from bertjp.tokenization import load_vocab


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


def inspect_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bertjp inspect", allow_abbrev=False,
        description="Print pretraining records as text. Masked positions show "
        "[MASK→label], {label} (token kept) or ⟨replacement→label⟩ (random token).")
    parser.add_argument("shard", help="a .tfrecord.gz (or plain .tfrecord) file, local or gs://")
    parser.add_argument("--vocab", required=True, help="tokenizer directory or vocab.txt")
    parser.add_argument("--limit", type=int, default=10, help="records to print (default 10)")
    args = parser.parse_args(argv)
    path = args.vocab if args.vocab.endswith(".txt") else args.vocab.rstrip("/") + "/vocab.txt"
    vocab = load_vocab(path)
    for n, example in enumerate(_records(args.shard)):
        if n >= args.limit:
            break
        print(format_record(n, example, vocab))
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


def validate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bertjp validate", allow_abbrev=False,
        description="Check every record of pretraining shards against the job's manifest: "
        "features, dtypes and lengths, id ranges, masks, and the records and masked "
        "tokens per shard. "
        "Exits 1 on any mismatch.")
    parser.add_argument("glob", help="shards, e.g. 'gs://B/data/cc100-*.tfrecord.gz'")
    parser.add_argument("--manifest", required=True, help="the job's PREFIX.manifest.json")
    args = parser.parse_args(argv)
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(args.manifest) as f:
        manifest = json.loads(f.read().decode("utf-8"))
    instance = manifest["config"]["instance"]
    seq, preds = instance["max_seq_length"], instance["max_predictions_per_seq"]
    expected_counts = {s["path"].rsplit("/", 1)[-1]: s["instances"]
                       for s in manifest["summary"]["shards"]}
    expected_masked = {s["path"].rsplit("/", 1)[-1]: s["masked_tokens"]
                       for s in manifest["summary"]["shards"] if "masked_tokens" in s}
    paths = sorted(m.path for m in FileSystems.match([args.glob])[0].metadata_list)
    errors, total = [], 0
    for path in paths:
        count = masked = 0
        try:
            for example in _records(path):
                for problem in check_record(example, seq, preds, manifest["vocab_size"]):
                    errors.append(f"{path} record {count}: {problem}")
                count += 1
                masked += int(sum(example["masked_lm_weights"][1]))
        except (RecordError, OSError) as err:
            errors.append(f"{path}: {err}")
        total += count
        name = path.rsplit("/", 1)[-1]
        if expected_counts.get(name) != count:
            errors.append(f"{path}: {count} records, the manifest says "
                          f"{expected_counts.get(name, 'nothing')}")
        if name in expected_masked and expected_masked[name] != masked:
            errors.append(f"{path}: {masked} masked tokens, the manifest says "
                          f"{expected_masked[name]}")
    for name in sorted(set(expected_counts) - {p.rsplit('/', 1)[-1] for p in paths}):
        errors.append(f"{name}: in the manifest, not matched by {args.glob}")
    for line in errors[:50]:
        print(line, file=sys.stderr)
    if errors:
        print(f"bertjp validate: {len(errors)} problem(s) in {len(paths)} file(s)", file=sys.stderr)
        return 1
    print(f"bertjp validate: {total:,} records in {len(paths)} file(s) match the manifest "
          f"(seq {seq}, {preds} predictions, vocabulary {manifest['vocab_size']:,})")
    return 0
