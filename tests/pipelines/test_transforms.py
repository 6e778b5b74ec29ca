"""The jobs' composite transforms on their own, with ``TestPipeline`` + ``assert_that``,
on small real inputs: the readers, SplitPages, the sample, word counting and vocabulary
training, and the buckets and instances of pretraining-data."""

import collections
import gzip
import hashlib
import io
import math

import apache_beam as beam
import pytest
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from bertjp import cirrus
from bertjp.corpus import format_document
from bertjp.records import decode_example, iter_records
from bertjp.sharding import stable_key
from bertjp.vocab_files import character_vocab
from pipelines.cc100_corpus import Cc100CorpusConfig, ReadCc100DocumentsFn
from pipelines.pretraining_data import (
    BucketDocuments,
    CreateInstances,
    CreateInstancesFn,
    PretrainingDataConfig,
    ReadDocumentsFn,
    TokenizeFn,
    assign_buckets,
)
from pipelines.sample_sentences import ReadSentencesFn, SampleConfig
from pipelines.stats import TalliedParDo
from pipelines.train_vocab import CountWords, ReadLinesFn, TrainVocab, TrainVocabConfig
from pipelines.transforms import ReadFiles, SampleByKey
from pipelines.wiki_corpus import ReadPagesFn, SplitPagesFn, WikiCorpusConfig
from tests.conftest import REFERENCE, WIKI_DUMP, documents_of, read_text
from tests.pipelines.test_stats import local_pipeline, summed_counts

WIKI_REFERENCE = REFERENCE / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz"
VOCAB = REFERENCE / "vocab" / "wordpiece_unidic_lite" / "vocab.txt"


def includes(expected: dict):
    """A matcher: the single element is a dict holding every item of ``expected``."""
    def check(actual):
        (got,) = actual
        wrong = {k: got.get(k) for k, v in expected.items() if got.get(k) != v}
        if wrong:
            raise BeamAssertException(f"expected {expected}, got {wrong} in {got}")
    return check


def reasons(dead):
    """``(line, reason)`` of each dead letter."""
    return dead | "Reasons" >> beam.Map(lambda r: (r["line"], r["reason"]))


def inputs_of(stats):
    """The ``("input", {...})`` stats records, without their kind."""
    return (stats
            | "Inputs" >> beam.Filter(lambda s: s[0] == "input")
            | "InputValues" >> beam.Map(lambda s: s[1]))


def input_record(path) -> dict:
    """What a reader reports of the file it read."""
    raw = path.read_bytes()
    lines = (gzip.decompress(raw) if path.suffix == ".gz" else raw).count(b"\n")
    return {"path": str(path), "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest(),
            "lines": lines}


# The readers: records, dead letters and stats of one small file each.

def wiki_lines(n: int) -> list[bytes]:
    """The first ``n`` lines of the real dump: action lines and pages alternate."""
    return gzip.decompress(WIKI_DUMP.read_bytes()).split(b"\n")[:n]


def test_read_pages_keeps_pages_and_sends_bad_lines_to_the_dead_letters(tmp_path):
    lines = wiki_lines(6)
    path = tmp_path / "dump.json.gz"
    path.write_bytes(gzip.compress(b"\n".join([*lines[:4], b'{"title": ', b"", *lines[4:]])
                                   + b"\n"))
    pages = [(n, cirrus.parse_line(raw)) for n, raw in enumerate(lines, 1) if n % 2 == 0]
    expected = [(str(path), n + (2 if n > 4 else 0), p.doc_id, p.title, p.text)
                for n, p in pages]
    with local_pipeline() as p:
        out = p | ReadFiles([str(path)], ReadPagesFn(1 << 20))
        assert_that(out.main, equal_to(expected), label="Pages")
        assert_that(reasons(out.dead), equal_to([(5, "malformed_json")]), label="Dead")
        assert_that(inputs_of(out.stats), equal_to([input_record(path)]), label="Input")
        assert_that(summed_counts(out.stats), includes(
            {"dropped.malformed_json": 1, "action_lines": 3, "blank_lines": 1,
             "input_files": 1, "lines_read": 8}), label="Counts")


def test_read_sentences_keys_each_valid_line_by_seed_file_and_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("一つ目の文。\n\n二つ目の文。\n".encode() + b"\xff broken\n"
                     + "三つ目。\n".encode())
    config = SampleConfig(inputs=(str(path),), output=str(tmp_path / "s.txt"), seed=7,
                          num_sentences=1)
    expected = [(stable_key(7, f"corpus.txt:{n}"), text.encode() + b"\n")
                for n, text in ((1, "一つ目の文。"), (3, "二つ目の文。"), (5, "三つ目。"))]
    with local_pipeline() as p:
        out = p | ReadFiles([str(path)], ReadSentencesFn(config))
        assert_that(out.main, equal_to(expected), label="Lines")
        assert_that(reasons(out.dead), equal_to([(4, "invalid_utf8")]), label="Dead")
        assert_that(summed_counts(out.stats), includes(
            {"dropped.invalid_utf8": 1, "blank_lines": 1, "lines_read": 5}), label="Counts")


def test_read_lines_gives_the_text_of_each_line(tmp_path):
    path = tmp_path / "sample.txt.gz"
    path.write_bytes(gzip.compress("猫が好き。\n\n吾輩は猫である。\n".encode()))
    with local_pipeline() as p:
        out = p | ReadFiles([str(path)], ReadLinesFn(1 << 20))
        assert_that(out.main, equal_to(["猫が好き。", "吾輩は猫である。"]), label="Lines")
        assert_that(out.dead, equal_to([]), label="Dead")
        assert_that(inputs_of(out.stats), equal_to([input_record(path)]), label="Input")


def test_read_documents_groups_corpus_lines_and_drops_invalid_bytes(tmp_path):
    path = tmp_path / "corpus-00000-of-00001.txt"
    path.write_bytes(b"a one.\n  a two.  \n\n\nb \xffone.\n")
    name = path.name
    with local_pipeline() as p:
        out = p | ReadFiles([str(path)], ReadDocumentsFn(1 << 20))
        assert_that(out.main, equal_to([(f"{name}:0", ["a one.", "a two."]),
                                        (f"{name}:1", ["b one."])]), label="Documents")
        assert_that(reasons(out.dead), equal_to([(5, "invalid_utf8_bytes_dropped")]),
                    label="Dead")
        assert_that(summed_counts(out.stats), includes({"documents_in": 2}), label="Counts")


def test_read_cc100_documents_normalises_lines_into_keyed_documents(tmp_path):
    path = tmp_path / "ja.txt"
    path.write_bytes("  一つ目\u3000の段落。 \n二つ目。\n\n次の文書。\n".encode())
    config = Cc100CorpusConfig(inputs=(str(path),), output=str(tmp_path / "c"), seed=3)
    expected = [(stable_key(3, f"cc100:ja.txt:{i}"), format_document(doc).encode())
                for i, doc in enumerate([["一つ目 の段落。", "二つ目。"], ["次の文書。"]])]
    with local_pipeline() as p:
        out = p | ReadFiles([str(path)], ReadCc100DocumentsFn(config))
        assert_that(out.main, equal_to(expected), label="Documents")
        assert_that(summed_counts(out.stats), includes(
            {"documents_in": 2, "documents_out": 2, "sentences.kept": 3}), label="Counts")


# wiki-corpus: SplitPages.

def test_split_pages_gives_the_reference_documents_keyed_by_page(tmp_path):
    pages = [cirrus.parse_line(raw) for raw in wiki_lines(6)[1::2]]
    elements = [("dump.json.gz", 2 * i + 2, p.doc_id, p.title, p.text)
                for i, p in enumerate(pages)]
    empty = ("dump.json.gz", 8, "999", "空", "")
    reference = documents_of(read_text(WIKI_REFERENCE))[:3]
    config = WikiCorpusConfig(inputs=("dump.json.gz",), output=str(tmp_path / "corpus"))
    expected = [(stable_key(0, f"wiki:{p.doc_id}"), format_document(doc).encode())
                for p, doc in zip(pages, reference, strict=True)]
    with local_pipeline() as p:
        out = (p | beam.Create([*elements, empty])
               | TalliedParDo(SplitPagesFn(config)))
        assert_that(out.main, equal_to(expected), label="Documents")
        assert_that(summed_counts(out.stats), includes(
            {"documents_out": 3, "dropped.empty_text": 1,
             "sentences.kept": sum(len(d) for d in reference)}), label="Counts")


# sample-sentences: the sample of the smallest keys.

def in_bin(b: int, low: int) -> int:
    """A 63-bit key in histogram bin ``b`` (its top 16 bits)."""
    return (b << 47) | low


SAMPLE_KEYS = [in_bin(1, 5), in_bin(1, 2), in_bin(1, 9), in_bin(2, 1), in_bin(2, 0),
               in_bin(7, 3), in_bin(300, 0)]


@pytest.mark.parametrize("k", [1, 3, 4, 5, 7, 100])
def test_the_sample_is_the_k_smallest_keys_and_counts_the_rest(k):
    records = [(key, f"line {key}".encode()) for key in SAMPLE_KEYS]
    left_out = {"not_sampled": len(records) - k} if k < len(records) else {}
    with local_pipeline() as p:
        sample = p | beam.Create(records) | SampleByKey(k)
        assert_that(sample.main, equal_to(sorted(records)[:k]), label="Sample")
        assert_that(summed_counts(sample.stats), equal_to([left_out]), label="Counts")


# train-vocab: CountWords and TrainVocab.

def vocab_config(tmp_path, **kwargs) -> TrainVocabConfig:
    return TrainVocabConfig(inputs=("sample.txt",), output=str(tmp_path / "tok"), **kwargs)


def test_count_words_totals_the_mecab_words_of_the_corpus(tmp_path):
    lines = ["猫が好き。", "吾輩は猫である。", "猫が好き。"]
    expected = {"猫": 3, "が": 2, "好き": 2, "。": 3, "吾輩": 1, "は": 1, "で": 1, "ある": 1}
    with local_pipeline() as p:
        words = p | beam.Create(lines) | CountWords(vocab_config(tmp_path))
        assert_that(words.main, equal_to(list(expected.items())), label="Words")
        assert_that(summed_counts(words.stats), includes(
            {"words": 14, "characters": 18, "characters_in_alphabet": 18}), label="Counts")


def test_train_vocab_writes_the_tokenizer_files(tmp_path):
    config = vocab_config(tmp_path, subword="character")
    expected = character_vocab(list(config.alphabet), config.num_unused)
    with local_pipeline() as p:
        stats = p | beam.Create([("猫", 3), ("が", 2)]) | TrainVocab(config)
        assert_that(stats | beam.Map(lambda s: s[1]), includes(
            {"role": "vocab", "records": len(expected), "distinct_words": 2}))
    assert (tmp_path / "tok" / "vocab.txt").read_text().split("\n")[:-1] == expected
    assert (tmp_path / "tok" / "tokenizer_config.json").exists()


# pretraining-data: buckets and instances.

@pytest.fixture(scope="module")
def pretraining_config(tmp_path_factory):
    vocab = tuple(VOCAB.read_text(encoding="utf-8").split("\n")[:-1])
    return PretrainingDataConfig(inputs=("corpus.txt",), vocab=vocab, dupe_factor=2,
                                 bucket_documents=2,
                                 output=str(tmp_path_factory.mktemp("data") / "data"))


@pytest.fixture(scope="module")
def tokenized(pretraining_config):
    """Six reference wiki documents as TokenizeFn gives them."""
    tokenize = TokenizeFn(pretraining_config)
    tokenize.setup()
    tokenize.start_bundle()
    docs = documents_of(read_text(WIKI_REFERENCE))[:6]
    return [out for i, doc in enumerate(docs)
            for out in tokenize.process((f"corpus.txt:{i}", list(doc)))]


def by_hand(tokenized, config) -> dict:
    """The buckets from :func:`assign_buckets` alone, members sorted."""
    buckets = collections.defaultdict(list)
    for doc in tokenized:
        for bucket, member in assign_buckets(doc, len(tokenized), config):
            buckets[bucket].append(member)
    return {bucket: sorted(members) for bucket, members in buckets.items()}


def test_each_pass_puts_every_document_in_one_of_ceil_n_over_size_buckets(
        tokenized, pretraining_config):
    assigned = [list(assign_buckets(doc, 6, pretraining_config)) for doc in tokenized]
    assert all([d for (d, _), _ in pairs] == [0, 1] for pairs in assigned)
    assert {b for pairs in assigned for (_, b), _ in pairs} <= set(range(math.ceil(6 / 2)))
    assert assigned == [list(assign_buckets(doc, 6, pretraining_config)) for doc in tokenized]


def test_bucket_documents_groups_what_assign_buckets_assigns(tokenized, pretraining_config):
    expected = by_hand(tokenized, pretraining_config)
    with local_pipeline() as p:
        buckets = p | beam.Create(tokenized) | BucketDocuments(pretraining_config)
        assert_that(buckets | beam.MapTuple(lambda b, members: (b, sorted(members))),
                    equal_to(list(expected.items())))


def test_create_instances_makes_each_buckets_records(tokenized, pretraining_config):
    create = CreateInstancesFn(pretraining_config)
    create.setup()
    create.start_bundle()
    expected = sorted(record for bucket in by_hand(tokenized, pretraining_config).items()
                      for batch in create.process(bucket) for record in batch)
    masked = sum(r[2] for r in expected)
    with local_pipeline() as p:
        instances = p | beam.Create(tokenized) | CreateInstances(pretraining_config)
        records = instances.main | beam.FlatMap(lambda batch: batch)
        assert_that(records, equal_to(expected), label="Records")
        assert_that(summed_counts(instances.stats), includes(
            {"instances": len(expected), "masked_tokens": masked}), label="Counts")
    features = decode_example(next(iter_records(io.BytesIO(expected[0][1]))))
    assert len(features["input_word_ids"][1]) == pretraining_config.instance.max_seq_length
