"""``bertjp inspect`` / ``bertjp validate`` on the reference's own records and broken copies."""

import gzip
import json
import shutil

import pytest

import bertjp_cli
from bertjp.records import decode_example, encode_example, instance_features
from tests.conftest import REFERENCE

REF_RECORDS = REFERENCE / "create_pretraining_data" / "pretraining_data.wordpiece.lower_false.tfrecord.gz"
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
