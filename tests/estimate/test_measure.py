"""The estimate runs the pipelines' own steps: what it measures is what the jobs write."""

from __future__ import annotations

import pathlib

import pytest

from bertjp_cli.estimate import measure, parse_config
from bertjp_cli.estimate.sample import read_sample
from bertjp_cli.estimate.vocabulary import load_vocabulary
from pipelines import cc100_corpus, pretraining_data, wiki_corpus
from tests.conftest import CC100, REFERENCE, WIKI_DUMP

VOCAB = REFERENCE / "vocab" / "wordpiece_unidic_lite"


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """The corpus and pretraining-data stages of the estimate on the whole CC-100 fixture."""
    folder = tmp_path_factory.mktemp("estimate")
    config = parse_config(["--input", str(CC100), "--vocab", str(VOCAB), "--dupe-factor", "2"])
    sample = read_sample(str(CC100), 10_000_000)  # the whole file
    corpus = measure.measure_corpus(sample, "cc100", config.mecab_dict, str(folder))
    vocabulary = load_vocabulary(config.vocab, config.subword)
    data = measure.measure_pretraining(corpus, vocabulary, config, str(folder))
    return folder, corpus, data


def test_the_corpus_shard_is_the_jobs(measured, tmp_path):
    folder, corpus, _ = measured
    cc100_corpus.run(["--input", str(CC100), "--output", str(tmp_path / "corpus"),
                      "--num-shards", "1", "--gzip"])
    ours = (folder / "corpus-00000-of-00001.txt.gz").read_bytes()
    assert ours == (tmp_path / "corpus-00000-of-00001.txt.gz").read_bytes()
    assert corpus.paths == [str(folder / "corpus-00000-of-00001.txt.gz")]
    assert corpus.documents == 536 and corpus.pages is None
    assert corpus.gzip_bytes == len(ours)
    assert set(corpus.seconds) == {"read", "write"}


def test_the_wiki_corpus_shard_is_the_jobs(tmp_path):
    sample = read_sample(str(WIKI_DUMP), 10_000_000)  # the whole file
    corpus = measure.measure_corpus(sample, "wiki", "unidic-lite", str(tmp_path / "ours"))
    wiki_corpus.run(["--input", str(WIKI_DUMP), "--output", str(tmp_path / "job"),
                     "--num-shards", "1", "--gzip"])
    (ours,) = corpus.paths
    assert pathlib.Path(ours).read_bytes() == (
        tmp_path / "job-00000-of-00001.txt.gz").read_bytes()
    assert corpus.pages == 50 and corpus.documents > 0
    assert set(corpus.seconds) == {"read", "split", "write"}


def test_the_records_are_the_jobs(measured, tmp_path):
    folder, corpus, data = measured
    pretraining_data.run(["--input", *corpus.paths, "--vocab", str(VOCAB), "--output",
                          str(tmp_path / "data"), "--num-shards", "1", "--dupe-factor", "2"])
    ours = (folder / "pretraining-00000-of-00001.tfrecord.gz").read_bytes()
    assert ours == (tmp_path / "data-00000-of-00001.tfrecord.gz").read_bytes()
    assert data.gzip_bytes == len(ours) and data.instances > 0 and data.tokens > 0
    assert set(data.seconds) == {"read", "tokenize", "instances", "write"}


def test_a_change_to_a_pipeline_step_changes_the_estimate(tmp_path, monkeypatch):
    sample = read_sample(str(WIKI_DUMP), 100_000)
    before = measure.measure_corpus(sample, "wiki", "unidic-lite", str(tmp_path / "a"))
    split = measure.wiki_corpus.SplitPagesFn.process

    def twice(self, element):
        for doc in split(self, element):
            yield doc
            yield doc

    monkeypatch.setattr(measure.wiki_corpus.SplitPagesFn, "process", twice)
    after = measure.measure_corpus(sample, "wiki", "unidic-lite", str(tmp_path / "b"))
    assert after.documents == 2 * before.documents > 0
    assert after.output_bytes == 2 * before.output_bytes
    assert set(after.seconds) == {"read", "split", "write"}


def test_shard_counts_default_to_the_commands():
    (wiki,), (cc100,) = ([measure._command_default(m, "num_shards")]
                         for m in (measure.wiki_corpus, measure.cc100_corpus))
    assert (wiki, cc100) == (8, 64)
    assert measure._command_default(pretraining_data, "seed") == 12345
