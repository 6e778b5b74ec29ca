"""``bertjp inspect`` / ``bertjp validate`` on the reference's own records and broken copies."""

import gzip
import json
import shutil
import struct

import pytest

import bertjp_cli
from bertjp.records import decode_example, encode_example, instance_features
from tests.conftest import REFERENCE

REF_RECORDS = (REFERENCE / "create_pretraining_data"
               / "pretraining_data.wordpiece.lower_false.tfrecord.gz")
VOCAB = REFERENCE / "vocab" / "wordpiece_unidic_lite"


def manifest_for(tmp_path, shard, instances=3379, seq=128, preds=19, masked=59295):
    manifest = {"config": {"instance": {"max_seq_length": seq, "max_predictions_per_seq": preds}},
                "vocab_size": 32768,
                "summary": {"shards": [{"path": str(shard), "instances": instances,
                                        "masked_tokens": masked}]}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))
    return path


@pytest.fixture
def shard(tmp_path):
    path = tmp_path / "data-00000-of-00001.tfrecord.gz"
    shutil.copy(REF_RECORDS, path)
    return path


def validate(glob, manifest):
    return bertjp_cli.main(["validate", str(glob), "--manifest", str(manifest)])


def test_the_reference_records_validate(tmp_path, shard, capsys):
    assert validate(shard, manifest_for(tmp_path, shard)) == 0
    assert "3,379 records in 1 file(s) match the manifest" in capsys.readouterr().out


def test_a_count_mismatch_fails(tmp_path, shard, capsys):
    assert validate(shard, manifest_for(tmp_path, shard, instances=3000)) == 1
    assert "3379 records, the manifest says 3000" in capsys.readouterr().err


def test_a_masked_token_count_mismatch_fails(tmp_path, shard, capsys):
    # 59,295 masked positions in the reference's file (its stats.json)
    assert validate(shard, manifest_for(tmp_path, shard, masked=59000)) == 1
    assert "59295 masked tokens, the manifest says 59000" in capsys.readouterr().err


def test_other_lengths_fail_on_every_record(tmp_path, shard, capsys):
    assert validate(shard, manifest_for(tmp_path, shard, seq=512, preds=76)) == 1
    err = capsys.readouterr().err
    assert "expected int64 x 512, got int64 x 128" in err and "problem(s) in 1 file(s)" in err


def test_a_corrupted_record_fails_with_its_number(tmp_path, shard, capsys):
    data = bytearray(gzip.decompress(shard.read_bytes()))
    data[5000] ^= 0xFF
    shard.write_bytes(gzip.compress(bytes(data)))
    assert validate(shard, manifest_for(tmp_path, shard)) == 1
    assert "CRC mismatch" in capsys.readouterr().err


def test_bad_values_are_named():
    from bertjp_cli.records_tools import check_record

    good = instance_features([2, 10, 3, 11, 3], [0, 0, 0, 1, 1], [1], [10], True, 8, 3)
    assert check_record(decode_example(encode_example(good)), 8, 3, 100) == []
    bad = instance_features([2, 10, 3, 500, 3], [0, 1, 0, 1, 1], [4], [10], True, 8, 3)
    problems = check_record(decode_example(encode_example(bad)), 8, 3, 100)
    assert any("vocabulary" in p for p in problems)
    assert any("segment ids" in p for p in problems)
    assert any("masked positions" in p for p in problems)


def test_inspect_shows_masks_and_labels(capsys):
    assert bertjp_cli.main(["inspect", str(REF_RECORDS), "--vocab", str(VOCAB),
                            "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n#") == 2 and out.startswith("#0  ")
    assert "[MASK→" in out and "  A: [CLS] " in out and out.rstrip().endswith("[SEP]")


# ------------------------------------------------------------------ the wrong manifest


@pytest.mark.parametrize("manifest,command", [
    ({"command": "wiki-corpus", "config": {"num_shards": 2, "gzip": True},
      "summary": {"shards": []}, "outputs": []}, "wiki-corpus"),
    ({"command": "train-vocab", "config": {"vocab_size": 32768, "subword": "wordpiece"},
      "summary": {"documents": {}}, "outputs": []}, "train-vocab"),
])
def test_a_manifest_of_another_command_is_named_with_the_missing_field(
        tmp_path, shard, capsys, manifest, command):
    path = tmp_path / f"{command}.manifest.json"
    path.write_text(json.dumps(manifest))
    assert validate(shard, path) == 1
    err = capsys.readouterr().err
    assert f"{path} is not a pretraining-data manifest" in err
    assert "'config.instance'" in err and f"bertjp {command}" in err
    assert "error: 'instance'" not in err and len(err.strip().splitlines()) == 2


def test_a_manifest_without_the_vocab_size_names_that_field(tmp_path, shard, capsys):
    path = manifest_for(tmp_path, shard)
    manifest = json.loads(path.read_text())
    del manifest["vocab_size"]
    path.write_text(json.dumps(manifest))
    assert validate(shard, path) == 1
    assert "is not a pretraining-data manifest (it has no 'vocab_size')" in capsys.readouterr().err


def test_a_manifest_that_is_not_json_is_named_with_its_position(tmp_path, shard, capsys):
    path = tmp_path / "m.json"
    path.write_text('{"config": {\n  "instance": oops}')
    assert validate(shard, path) == 1
    assert f"--manifest {path} is not JSON (line 2, column 15" in capsys.readouterr().err


def test_a_missing_manifest_names_the_flag_and_file(tmp_path, shard, capsys):
    path = tmp_path / "nope.manifest.json"
    assert validate(shard, path) == 1
    assert f"error: --manifest {path} cannot be read (" in capsys.readouterr().err


# ------------------------------------------------------------------ truncated and foreign files


def manifest_with_outputs(tmp_path, shards, **counts):
    """A manifest listing ``shards`` (their sizes now) in "outputs" and the summary."""
    manifest = {"command": "pretraining-data",
                "config": {"instance": {"max_seq_length": 128, "max_predictions_per_seq": 19}},
                "vocab_size": 32768,
                "summary": {"shards": [{"path": str(s), "instances": counts.get(s.name, 3379),
                                        "masked_tokens": 59295} for s in shards]},
                "outputs": [{"role": "shard", "path": str(s), "bytes": s.stat().st_size}
                            for s in shards]}
    path = tmp_path / "data.manifest.json"
    path.write_text(json.dumps(manifest))
    return path


@pytest.fixture
def two_shards(tmp_path):
    paths = [tmp_path / f"data-0000{i}-of-00002.tfrecord.gz" for i in range(2)]
    for path in paths:
        shutil.copy(REF_RECORDS, path)
    return paths


def test_a_truncated_shard_is_named_with_its_position_and_the_others_are_still_checked(
        tmp_path, two_shards, capsys):
    first, second = two_shards
    manifest = manifest_with_outputs(tmp_path, two_shards, **{second.name: 3000})
    size = first.stat().st_size
    first.write_bytes(first.read_bytes()[:size // 2])
    assert validate(tmp_path / "data-*.tfrecord.gz", manifest) == 1
    err = capsys.readouterr().err
    truncated = [line for line in err.splitlines() if line.startswith(f"{first}: record ")]
    assert len(truncated) == 1, err
    assert "at byte offset" in truncated[0] and "of the decompressed data" in truncated[0]
    assert "truncated" in truncated[0]
    record = int(truncated[0].split(": record ")[1].split()[0])
    assert 1000 < record < 3379
    assert f"{first}: {record} records, the manifest says 3379" in err
    assert f"{first} has {size // 2:,} bytes, {manifest} says {size:,}" in err
    assert f"{second}: 3379 records, the manifest says 3000" in err  # checked all the same


def record_at(data: bytes, position: int) -> tuple[int, int]:
    """``(number, offset)`` of the record of a TFRecord stream that spans ``position``."""
    n = offset = 0
    while True:
        (size,) = struct.unpack("<Q", data[offset:offset + 8])
        if offset + 16 + size > position:
            return n, offset
        n, offset = n + 1, offset + 16 + size


def test_a_plain_tfrecord_cut_inside_a_record_names_the_record_and_offset(tmp_path, capsys):
    data = gzip.decompress(REF_RECORDS.read_bytes())
    shard = tmp_path / "data-00000-of-00001.tfrecord"
    shard.write_bytes(data[:100_000])
    manifest = manifest_for(tmp_path, shard)
    assert validate(shard, manifest) == 1
    err = capsys.readouterr().err
    record, offset = record_at(data, 100_000)
    assert (record, offset) == (119, 99_496)
    assert f"{shard}: record {record} at byte offset {offset:,}: truncated data" in err


def test_files_the_manifest_does_not_list_and_missing_ones_are_problems(
        tmp_path, two_shards, capsys):
    first, second = two_shards
    manifest = manifest_with_outputs(tmp_path, two_shards)
    stranger = tmp_path / "data-00000-of-00003.tfrecord.gz"
    shutil.copy(REF_RECORDS, stranger)
    second.unlink()
    assert validate(tmp_path / "data-*.tfrecord.gz", manifest) == 1
    err = capsys.readouterr().err
    assert f"{stranger} is not in {manifest}" in err
    assert f"1 of the 2 files {manifest} lists are not matched: {second.name}" in err
    assert f"{first}:" not in err  # the listed file that is there is fine
    assert "problem(s) in 2 file(s)" in err


def test_a_rewritten_shard_of_another_size_is_a_problem(tmp_path, two_shards, capsys):
    manifest = manifest_with_outputs(tmp_path, two_shards)
    data = json.loads(manifest.read_text())
    data["outputs"][1]["bytes"] += 7
    manifest.write_text(json.dumps(data))
    assert validate(tmp_path / "data-*.tfrecord.gz", manifest) == 1
    size = two_shards[1].stat().st_size
    assert f"{two_shards[1]} has {size:,} bytes, {manifest} says {size + 7:,}" in \
        capsys.readouterr().err


def test_shards_and_their_manifest_validate(tmp_path, two_shards, capsys):
    manifest = manifest_with_outputs(tmp_path, two_shards)
    assert validate(tmp_path / "data-*.tfrecord.gz", manifest) == 0
    assert "6,758 records in 2 file(s) match the manifest" in capsys.readouterr().out


# ------------------------------------------------------------------ --input, --verbose


@pytest.mark.parametrize("style", ["values", "repeated", "positional", "mixed"])
def test_shards_by_input_flag_or_positional(tmp_path, two_shards, capsys, style):
    first, second = (str(p) for p in two_shards)
    shards = {"values": ["--input", first, second],
              "repeated": ["--input", first, "--input", second],
              "positional": [first, second],
              "mixed": [first, "--input", second]}[style]
    manifest = manifest_with_outputs(tmp_path, two_shards)
    assert bertjp_cli.main(["validate", *shards, "--manifest", str(manifest)]) == 0
    assert "6,758 records in 2 file(s)" in capsys.readouterr().out


def test_validate_without_shards_is_a_usage_error(tmp_path, shard, capsys):
    with pytest.raises(SystemExit) as exit_:
        bertjp_cli.main(["validate", "--manifest", str(manifest_for(tmp_path, shard))])
    assert exit_.value.code == 2
    assert "--input" in capsys.readouterr().err


def test_a_pattern_that_matches_nothing_is_named(tmp_path, shard, capsys):
    manifest = manifest_for(tmp_path, shard)
    assert bertjp_cli.main(["validate", "--input", str(shard), str(tmp_path / "nope-*"),
                            "--manifest", str(manifest)]) == 1
    assert f"--input '{tmp_path / 'nope-*'}' matches no file" in capsys.readouterr().err


def test_verbose_shows_the_traceback(tmp_path, shard):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"command": "cc100-corpus", "config": {}}))
    with pytest.raises(ValueError, match="is not a pretraining-data manifest"):
        bertjp_cli.main(["validate", str(shard), "--manifest", str(path), "--verbose"])
    text = tmp_path / "notes.txt"
    text.write_text("hello, world\n" * 3)
    with pytest.raises(ValueError, match="is not a TFRecord file"):
        bertjp_cli.main(["inspect", "--input", str(text), "--vocab", str(VOCAB), "--verbose"])


def test_inspect_says_a_text_file_is_not_tfrecord(tmp_path, capsys):
    text = tmp_path / "corpus-00000-of-00001.txt"
    text.write_text("吾輩は猫である。\n名前はまだ無い。\n\n")
    assert bertjp_cli.main(["inspect", str(text), "--vocab", str(VOCAB)]) == 1
    err = capsys.readouterr().err
    assert f"error: {text} is not a TFRecord file" in err and "CRC" not in err.split("(")[0]
    gz = tmp_path / "corpus-00000-of-00001.txt.gz"
    gz.write_bytes(gzip.compress(text.read_bytes()))
    assert bertjp_cli.main(["inspect", "--input", str(gz), "--vocab", str(VOCAB)]) == 1
    assert f"error: {gz} is not a TFRecord file" in capsys.readouterr().err


def test_inspect_names_a_truncation_after_the_first_records(tmp_path, capsys):
    cut = tmp_path / "cut.tfrecord"
    cut.write_bytes(gzip.decompress(REF_RECORDS.read_bytes())[:100_000])
    assert bertjp_cli.main(["inspect", str(cut), "--vocab", str(VOCAB), "--limit", "500"]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("\n#") == 118  # records 0..118 printed
    assert f"error: {cut}: record 119 at byte offset 99,496: truncated data" in captured.err


def test_inspect_reads_every_input_up_to_the_limit(tmp_path, two_shards, capsys):
    first, second = two_shards
    assert bertjp_cli.main(["inspect", "--input", str(first), "--input", str(second),
                            "--vocab", str(VOCAB), "--limit", "3379"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"== {first}\n#0  ") and f"\n== {second}\n#0  " not in out
    assert bertjp_cli.main(["inspect", "--input", str(first), str(second),
                            "--vocab", str(VOCAB), "--limit", "3381"]) == 0
    out = capsys.readouterr().out
    assert f"\n== {second}\n#0  " in out and "\n#1  " in out.split(f"== {second}")[1]
    assert "\n#2  " not in out.split(f"== {second}")[1]
