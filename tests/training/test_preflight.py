"""training.preflight against the manifest of a real small pretraining-data run."""

import copy
import json

import pytest

from bertjp.manifest import to_json
from pipelines import pretraining_data
from tests.conftest import REFERENCE
from training import configs, preflight

CORPUS = REFERENCE / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz"
WORDPIECE = REFERENCE / "vocab" / "wordpiece_unidic_lite"
CHARACTER = REFERENCE / "vocab" / "character_unidic_lite"


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """(prefix, manifest) of 2 shards at seq 128 with 20 predictions per sequence."""
    prefix = tmp_path_factory.mktemp("records") / "data"
    manifest = pretraining_data.run([
        "--input", str(CORPUS), "--vocab", str(WORDPIECE), "--output", str(prefix),
        "--num-shards", "2", "--dupe-factor", "1", "--max-seq-length", "128",
        "--max-predictions-per-seq", "20"])
    return prefix, manifest


@pytest.fixture(scope="module")
def manifest(records):
    return records[1]


def _config(records, **kwargs):
    prefix, _ = records
    args = {"max_predictions_per_seq": 20, "global_batch_size": 8, **kwargs}
    data = args.pop("data", "cc100")
    vocab_size = args.pop("vocab_size", 32768)
    return configs.experiment_config("tiny", vocab_size, data, f"{prefix}-*.tfrecord.gz",
                                     **args)


def test_matching_records_pass(records, manifest):
    config = _config(records)
    assert preflight.check(manifest, config, num_hosts=2, vocab_dir=str(WORDPIECE)) == []
    preflight.check_or_raise(manifest, config, num_hosts=2, vocab_dir=str(WORDPIECE))


def test_the_checked_config_reads_the_records(records):
    """What preflight accepts, Model Garden's loader parses: one batch of the shards."""
    from official.nlp.data import pretrain_dataloader

    config = _config(records)
    batch = next(iter(pretrain_dataloader.BertPretrainDataLoader(
        config.task.train_data).load()))
    assert batch["input_word_ids"].shape == (8, 128)
    assert batch["masked_lm_positions"].shape == (8, 20)
    assert batch["next_sentence_labels"].shape == (8, 1)


def _only(problems, prefix):
    assert len(problems) == 1, problems
    assert problems[0].startswith(prefix), problems
    return problems[0]


def test_seq_length_mismatch(records, manifest):
    message = _only(preflight.check(manifest, _config(records, seq_length=256)), "seq length:")
    assert "records have 128, the experiment expects 256" in message
    assert "--max-seq-length 256" in message and "--seq-length 128" in message


def test_wikipedia_stage_on_cc100_records(records, manifest):
    problems = preflight.check(manifest, _config(records, data="wikipedia",
                                                 max_predictions_per_seq=None))
    assert problems[0] == ("seq length: the records have 128, the experiment expects 512 "
                           "(data 'wikipedia'); make the records with --max-seq-length 512 "
                           "or train with --data cc100")
    assert problems[1].startswith("max predictions: the records have 20 per sequence, the "
                                  "experiment expects 76")
    assert len(problems) == 2


def test_predictions_mismatch(records, manifest):
    message = _only(preflight.check(manifest, _config(records, max_predictions_per_seq=19)),
                    "max predictions:")
    assert "records have 20" in message and "expects 19 (data 'cc100')" in message
    assert "--max-predictions-per-seq 19" in message


def test_v1_feature_names(records, manifest):
    v1 = copy.deepcopy(manifest)
    v1["config"]["v2_feature_names"] = False
    message = _only(preflight.check(v1, _config(records)), "feature names:")
    assert "v1 names (input_ids, segment_ids)" in message
    assert "without --v1-feature-names" in message


def test_vocab_size_mismatch(records, manifest):
    message = _only(preflight.check(manifest, _config(records, vocab_size=7027)), "vocab size:")
    assert "32768-token vocabulary" in message and "encoder has 7027" in message


def test_vocab_checksum_of_another_vocabulary(records, manifest, tmp_path):
    config = _config(records)
    message = _only(preflight.check(manifest, config, vocab_dir=str(CHARACTER)),
                    "vocab checksum:")
    assert str(CHARACTER) in message and manifest["vocab_sha256"][:12] in message
    tokens = (WORDPIECE / "vocab.txt").read_text(encoding="utf-8").split("\n")
    tokens[5], tokens[6] = tokens[6], tokens[5]  # same size, different order
    (tmp_path / "vocab.txt").write_text("\n".join(tokens), encoding="utf-8")
    assert configs.vocab_size_of(str(tmp_path)) == 32768
    _only(preflight.check(manifest, config, vocab_dir=str(tmp_path)), "vocab checksum:")
    assert preflight.check(manifest, config, vocab_dir=str(WORDPIECE / "vocab.txt")) == []


def test_too_few_shard_files_for_the_hosts(records, manifest):
    message = _only(preflight.check(manifest, _config(records), num_hosts=4), "shards:")
    assert "2 shard file(s), fewer than the 4 hosts" in message
    assert "--num-shards 4" in message


def test_uncompressed_shard_paths(records, manifest):
    plain = copy.deepcopy(manifest)
    for output in plain["outputs"]:
        if output["role"] == "shard":
            output["path"] = output["path"].removesuffix(".gz")
    message = _only(preflight.check(plain, _config(records)), "compression:")
    assert "2 shard file(s) are not gzip" in message and "tfrecord_compressed" in message


def test_uncompressed_file_type(records, manifest):
    config = _config(records)
    config.override({"task": {"train_data": {"file_type": "tfrecord"},
                              "validation_data": {"file_type": "tfrecord"}}})
    message = _only(preflight.check(manifest, config), "compression:")
    assert "file_type 'tfrecord'" in message


def test_zero_instances(records, manifest):
    empty = copy.deepcopy(manifest)
    empty["summary"]["instances"] = 0
    _only(preflight.check(empty, _config(records)), "instances: the records hold 0")


def test_not_a_manifest(records):
    [message] = preflight.check({"command": "train-vocab", "config": {}}, _config(records))
    assert message.startswith("manifest: missing config.instance.max_seq_length")
    assert "bertjp pretraining-data" in message


def test_check_or_raise_lists_every_problem(records, manifest):
    config = _config(records, seq_length=256, vocab_size=7027)
    with pytest.raises(ValueError, match=r"2 problem\(s\).*seq length:.* \| vocab size:"):
        preflight.check_or_raise(manifest, config, num_hosts=1)


def test_describe(manifest):
    line = preflight.describe(manifest)
    instances = manifest["summary"]["instances"]
    assert line.startswith(f"{instances:,} instances in 2 shard(s), seq 128, 20 predictions")
    assert "vocab 32768 (wordpiece)" in line and "\n" not in line


def test_load_manifest_from_the_file_or_the_prefix(records, manifest, tmp_path):
    prefix, _ = records
    # load_manifest gives the typed Manifest (bertjp.manifest); to_json is the JSON read.
    assert to_json(preflight.load_manifest(f"{prefix}.manifest.json")) == json.loads(
        json.dumps(manifest))
    assert preflight.load_manifest(str(prefix)) == preflight.load_manifest(
        f"{prefix}.manifest.json")
    with pytest.raises(FileNotFoundError, match="no manifest at .*nothing.manifest.json"):
        preflight.load_manifest(str(tmp_path / "nothing"))
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        preflight.load_manifest(str(tmp_path / "bad.json"))
