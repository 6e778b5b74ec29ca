"""Every pipeline command gs:// → gs:// against the GCS emulator, results read back."""

import gzip
import json

import pytest

from pipelines import cc100_corpus, pretraining_data, sample_sentences, train_vocab, wiki_corpus
from tests.cloud.conftest import listing, read_bytes, upload
from tests.conftest import CC100, REFERENCE, WIKI_DUMP

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def inputs(gcs):
    return {
        "wiki": upload(WIKI_DUMP, f"{gcs}/dumps/{WIKI_DUMP.name}"),
        "cc100": upload(CC100, f"{gcs}/dumps/ja.txt.xz"),
        "vocab": upload(REFERENCE / "vocab" / "wordpiece_unidic_lite" / "vocab.txt",
                        f"{gcs}/released/wordpiece/vocab.txt"),
    }


@pytest.fixture(scope="module")
def wiki(gcs, inputs):
    return wiki_corpus.run(["--input", inputs["wiki"], "--output", f"{gcs}/corpus/wiki/corpus",
                            "--num-shards", "2", "--gzip"])


def test_wiki_corpus_reads_and_writes_gcs(gcs, wiki, tmp_path):
    shards = listing(f"{gcs}/corpus/wiki/corpus-*.txt.gz")
    assert shards == [f"{gcs}/corpus/wiki/corpus-0000{i}-of-00002.txt.gz" for i in range(2)]
    text = "".join(gzip.decompress(read_bytes(p)).decode("utf-8") for p in shards)
    assert text.count("\n\n") == 50  # every page of the dump
    manifest = json.loads(read_bytes(f"{gcs}/corpus/wiki/corpus.manifest.json"))
    assert manifest == wiki and manifest["inputs"][0]["path"] == f"{gcs}/dumps/{WIKI_DUMP.name}"
    assert [o["path"] for o in manifest["outputs"] if o["role"] == "shard"] == shards
    assert listing(f"{gcs}/corpus/wiki/corpus.dead-letter.jsonl")
    # Same bytes as a local run (the shard contents do not depend on where they are written).
    local = wiki_corpus.run(["--input", str(WIKI_DUMP), "--output", str(tmp_path / "c"),
                             "--num-shards", "2", "--gzip"])
    assert sorted(o["content_sha256"] for o in local["outputs"] if o["role"] == "shard") == \
        sorted(o["content_sha256"] for o in manifest["outputs"] if o["role"] == "shard")
    assert not listing(f"{gcs}/corpus/wiki/corpus-*.tmp-*")  # temporary parts cleaned up


def test_cc100_corpus_and_sample_on_gcs(gcs, inputs, wiki):
    m = cc100_corpus.run(["--input", inputs["cc100"], "--output", f"{gcs}/corpus/cc100/corpus",
                          "--num-shards", "3"])
    assert len(listing(f"{gcs}/corpus/cc100/corpus-*-of-00003.txt")) == 3
    assert m["summary"]["accounted"]
    s = sample_sentences.run(["--input", f"{gcs}/corpus/wiki/corpus-*.txt.gz",
                              "--output", f"{gcs}/sample/sample.txt", "--num-sentences", "300"])
    lines = read_bytes(f"{gcs}/sample/sample.txt").decode("utf-8").splitlines()
    assert len(lines) == 300 and s["inputs"][0]["path"].startswith("gs://")


def test_vocab_and_pretraining_data_on_gcs(gcs, inputs, wiki):
    v = train_vocab.run(["--input", f"{gcs}/corpus/wiki/corpus-*.txt.gz",
                         "--output", f"{gcs}/tokenizers/wordpiece", "--vocab-size", "9000"])
    vocab = read_bytes(f"{gcs}/tokenizers/wordpiece/vocab.txt").decode("utf-8").splitlines()
    assert len(vocab) == 9000 and v["summary"]["accounted"]
    config = json.loads(read_bytes(f"{gcs}/tokenizers/wordpiece/tokenizer_config.json"))
    assert config["tokenizer_class"] == "BertJapaneseTokenizer"
    m = pretraining_data.run([
        "--input", f"{gcs}/corpus/wiki/corpus-*.txt.gz", "--vocab", f"{gcs}/tokenizers/wordpiece",
        "--output", f"{gcs}/data/wiki", "--num-shards", "2", "--dupe-factor", "1"])
    shards = listing(f"{gcs}/data/wiki-*.tfrecord.gz")
    assert len(shards) == 2 and m["summary"]["instances"] > 1000
    import io

    from bertjp.records import iter_records
    records = sum(len(list(iter_records(io.BytesIO(gzip.decompress(read_bytes(p))))))
                  for p in shards)
    assert records == m["summary"]["instances"]
    assert m["vocab_size"] == 9000
    import bertjp_cli

    assert bertjp_cli.main(["validate", f"{gcs}/data/wiki-*.tfrecord.gz",
                            "--manifest", f"{gcs}/data/wiki.manifest.json"]) == 0


def test_released_vocab_file_path_on_gcs(gcs, inputs, wiki):
    m = pretraining_data.run([
        "--input", f"{gcs}/corpus/wiki/corpus-00000-of-00002.txt.gz", "--vocab", inputs["vocab"],
        "--output", f"{gcs}/data/released", "--num-shards", "1", "--dupe-factor", "1"])
    assert m["vocab_size"] == 32768 and listing(f"{gcs}/data/released-00000-of-00001.tfrecord.gz")


def test_a_missing_gcs_input_is_a_clear_error(gcs, capsys):
    import bertjp_cli

    code = bertjp_cli.main(["wiki-corpus", "--input", f"{gcs}/nope/*.json.gz",
                            "--output", f"{gcs}/x/corpus"])
    assert code != 0
    err = capsys.readouterr().err
    assert "bertjp wiki-corpus: error:" in err and "nope" in err, err
