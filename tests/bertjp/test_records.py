"""Records we encode without TensorFlow, read by TensorFlow and Model Garden's loader."""

import gzip
import random

import pytest

from bertjp.records import encode_example, frame_record, instance_features


def fake_instances(n, seq=32, preds=5, seed=0):
    rng = random.Random(seed)
    for _ in range(n):
        length = rng.randint(8, seq)
        positions = sorted(rng.sample(range(1, length - 1), rng.randint(1, preds)))
        yield ([rng.randint(0, 32767) for _ in range(length)],
               [0] * (length // 2) + [1] * (length - length // 2),
               positions, [rng.randint(5, 32767) for _ in positions], rng.random() < 0.5)


def write_records(path, n=20, v2=True, seq=32, preds=5):
    with gzip.open(path, "wb") as f:
        for ids, types, pos, labels, nsp in fake_instances(n, seq, preds):
            f.write(frame_record(encode_example(
                instance_features(ids, types, pos, labels, nsp, seq, preds, v2_names=v2))))


def test_tensorflow_parses_every_feature(tmp_path):
    tf = pytest.importorskip("tensorflow")
    path = tmp_path / "r.tfrecord.gz"
    write_records(path)
    expected = list(fake_instances(20))
    records = list(tf.data.TFRecordDataset(str(path), compression_type="GZIP"))
    assert len(records) == 20
    for raw, (ids, types, pos, labels, nsp) in zip(records, expected, strict=True):
        ex = tf.train.Example.FromString(raw.numpy()).features.feature
        assert list(ex["input_word_ids"].int64_list.value) == ids + [0] * (32 - len(ids))
        assert list(ex["input_type_ids"].int64_list.value)[:len(types)] == types
        assert sum(ex["input_mask"].int64_list.value) == len(ids)
        assert list(ex["masked_lm_positions"].int64_list.value)[:len(pos)] == pos
        assert list(ex["masked_lm_ids"].int64_list.value)[:len(labels)] == labels
        assert list(ex["masked_lm_weights"].float_list.value) == (
            [1.0] * len(pos) + [0.0] * (5 - len(pos)))
        assert list(ex["next_sentence_labels"].int64_list.value) == [int(nsp)]


@pytest.mark.parametrize("v2", [True, False])
def test_model_garden_pretrain_loader_reads_our_records(tmp_path, v2):
    pytest.importorskip("official")
    from official.nlp.data import pretrain_dataloader

    path = tmp_path / "r.tfrecord.gz"
    write_records(path, n=20, v2=v2)
    config = pretrain_dataloader.BertPretrainDataConfig(
        input_path=str(path), file_type="tfrecord_compressed", use_v2_feature_names=v2,
        seq_length=32, max_predictions_per_seq=5, global_batch_size=8, is_training=False)
    batch = next(iter(pretrain_dataloader.BertPretrainDataLoader(config).load()))
    assert tuple(batch["input_word_ids"].shape) == (8, 32)
    assert tuple(batch["input_type_ids"].shape) == (8, 32)
    assert tuple(batch["masked_lm_positions"].shape) == (8, 5)
    assert tuple(batch["masked_lm_weights"].shape) == (8, 5)
    assert tuple(batch["next_sentence_labels"].shape) == (8, 1)
    first = next(fake_instances(1))
    assert batch["input_word_ids"][0][: len(first[0])].numpy().tolist() == first[0]


def test_oversized_instances_are_refused():
    with pytest.raises(ValueError):
        instance_features([1] * 10, [0] * 10, [1], [1], False, 8, 5)


def test_table_varints_equal_the_general_encoding():
    from bertjp.records import _packed_varints, _varint

    values = [0, 1, 127, 128, 300, 65535, 65536, -1, 2**40]
    assert _packed_varints(values) == b"".join(_varint(v) for v in values)
    assert _varint(300) == b"\xac\x02" and _varint(-1) == b"\xff" * 9 + b"\x01"
