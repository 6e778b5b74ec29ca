"""The sample-sentences job: a seeded bottom-K sample of corpus lines."""

import gzip
import posixpath

import pytest

from bertjp.sharding import stable_key
from pipelines import sample_sentences
from tests.conftest import REFERENCE, read_text

CORPUS = REFERENCE / "merge_split_corpora" / "wiki_n8"


def run(tmp_path, *extra, name="sample.txt", inputs=(CORPUS / "corpus_*.txt.gz",)):
    argv = ["--input", *map(str, inputs), "--output", str(tmp_path / name), *map(str, extra)]
    return sample_sentences.run(argv)


def expected_sample(k, seed):
    """Brute force: every non-empty line with its key, the k smallest, in key order."""
    keyed = []
    for path in sorted(CORPUS.glob("corpus_*.txt.gz")):
        for lineno, line in enumerate(read_text(path).split("\n")[:-1], start=1):
            if line.strip():
                keyed.append((stable_key(seed, f"{posixpath.basename(path)}:{lineno}"), line))
    return [line for _, line in sorted(keyed)[:k]]


@pytest.mark.parametrize("k,seed", [(500, 0), (1234, 42)])
def test_sample_is_the_k_smallest_keys_in_key_order(tmp_path, k, seed):
    manifest = run(tmp_path, "--num-sentences", k, "--seed", seed)
    assert read_text(tmp_path / "sample.txt").split("\n")[:-1] == expected_sample(k, seed)
    s = manifest["summary"]
    assert s["documents"]["in"] == 4417 and s["documents"]["out"] == k
    assert s["documents"]["dropped"] == {"not_sampled": 4417 - k} and s["accounted"]


def test_two_workers_write_the_same_gzip_bytes(tmp_path):
    one = run(tmp_path, "--num-sentences", 800, name="one.txt.gz")
    two = run(tmp_path, "--num-sentences", 800, "--direct_running_mode", "multi_threading",
              "--direct_num_workers", 2, name="two.txt.gz")
    assert (tmp_path / "one.txt.gz").read_bytes() == (tmp_path / "two.txt.gz").read_bytes()
    assert gzip.decompress((tmp_path / "one.txt.gz").read_bytes()).count(b"\n") == 800
    assert one["outputs"][0]["content_sha256"] == two["outputs"][0]["content_sha256"]


def test_k_above_the_corpus_size_takes_everything(tmp_path):
    manifest = run(tmp_path, "--num-sentences", 10**6)
    assert manifest["summary"]["documents"]["out"] == 4417
    assert sorted(read_text(tmp_path / "sample.txt").split("\n")[:-1]) == sorted(
        expected_sample(10**6, 0))


def test_bad_lines_are_dead_lettered(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("良い文です。\n\n".encode() + b"\xff\xfe\n" + "もう一つ。\n".encode())
    manifest = run(tmp_path, "--num-sentences", 10, inputs=(path,))
    s = manifest["summary"]
    assert s["documents"] == {"in": 3, "out": 2,
                              "dropped": {"invalid_utf8": 1, "not_sampled": 0}}
    assert s["dead_letters"] == 1
