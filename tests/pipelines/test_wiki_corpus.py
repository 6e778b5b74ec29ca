"""The wiki-corpus job on the DirectRunner (FnApiRunner) with real fixtures."""

import gzip
import hashlib
import json
import pathlib

import pytest

from pipelines import wiki_corpus
from tests.conftest import FIXTURES, WIKI_DUMP, multiset, read_text, shard_documents


def run(tmp_path, *extra, inputs=(WIKI_DUMP,), name="corpus"):
    argv = ["--input", *map(str, inputs), "--output", str(tmp_path / name), *map(str, extra)]
    return wiki_corpus.run(argv)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    return run(tmp_path_factory.mktemp("wiki"), "--num-shards", 4)


def test_unidic_lite_parity_with_reference(default_run, reference_wiki_docs):
    docs = [d for shard in shard_documents(default_run) for d in shard]
    assert multiset(docs) == multiset(reference_wiki_docs["unidic_lite"])


def test_ipadic_parity_with_reference(tmp_path, reference_wiki_docs):
    manifest = run(tmp_path, "--num-shards", 3, "--mecab-dict", "ipadic", "--gzip")
    docs = [d for shard in shard_documents(manifest) for d in shard]
    assert multiset(docs) == multiset(reference_wiki_docs["ipadic"])
    assert manifest["mecab_dictionary"]["name"] == "ipadic"


def test_summary_counts_and_manifest(default_run):
    s = default_run["summary"]
    assert s["documents"] == {"in": 50, "out": 50, "dropped": {}}
    assert s["sentences"]["kept"] == 4417
    assert s["accounted"] and s["dead_letters"] == 0
    counts = default_run["counts"]
    assert counts["action_lines"] == 50 and counts["lines_read"] == 100
    [inp] = default_run["inputs"]
    assert inp["sha256"] == hashlib.sha256(WIKI_DUMP.read_bytes()).hexdigest()
    assert inp["bytes"] == WIKI_DUMP.stat().st_size
    for out in default_run["outputs"]:
        data = pathlib.Path(out["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == out["sha256"]
    shards = [o for o in default_run["outputs"] if o["role"] == "shard"]
    assert sum(o["records"] for o in shards) == 50
    assert sum(o["lines"] - o["records"] for o in shards) == 4417  # sentences per shard
    per_shard = s["shards"]
    assert [x["documents"] for x in per_shard] == [o["records"] for o in shards]
    assert sum(x["sentences"] for x in per_shard) == 4417
    assert default_run["config"]["seed"] == 0 and default_run["versions"]["fugashi"]
    assert pathlib.Path(default_run["outputs_prefix"] + ".manifest.json").exists()


def test_shards_are_balanced_and_complete(default_run):
    shards = [o for o in default_run["outputs"] if o["role"] == "shard"]
    sizes = [o["content_bytes"] for o in shards]
    largest_doc = max(len("\n".join(d).encode()) + 2
                      for shard in shard_documents(default_run) for d in shard)
    assert sum(sizes) == 704454  # the reference corpus, byte for byte
    assert max(sizes) - min(sizes) <= 2 * largest_doc


def test_two_workers_multiprocessing_write_identical_files(tmp_path, default_run):
    manifest = run(tmp_path, "--num-shards", 4, "--direct_running_mode", "multi_processing",
                   "--direct_num_workers", 2)
    ours = {o["shard"]: o["sha256"] for o in manifest["outputs"] if o["role"] == "shard"}
    theirs = {o["shard"]: o["sha256"] for o in default_run["outputs"] if o["role"] == "shard"}
    assert ours == theirs


def test_seed_changes_assignment_not_content(tmp_path, default_run):
    manifest = run(tmp_path, "--num-shards", 4, "--seed", 7)
    a = [multiset(s) for s in shard_documents(manifest)]
    b = [multiset(s) for s in shard_documents(default_run)]
    assert a != b and sum(a, multiset([])) == sum(b, multiset([]))


@pytest.mark.parametrize("variant", sorted((FIXTURES / "cirrus_variants").glob("*.gz")))
def test_action_line_variants(tmp_path, variant, reference_wiki_docs):
    manifest = run(tmp_path, "--num-shards", 1, inputs=(variant,))
    assert manifest["summary"]["documents"]["out"] == 5
    docs = shard_documents(manifest)[0]
    assert multiset(docs) <= multiset(reference_wiki_docs["unidic_lite"])


def test_several_inputs_and_globs(tmp_path):
    pattern = FIXTURES / "cirrus_variants" / "*.json.gz"
    manifest = run(tmp_path, "--num-shards", 2, inputs=(pattern, WIKI_DUMP))
    assert len(manifest["inputs"]) == 3
    assert manifest["summary"]["documents"]["out"] == 60


# --- bad input ---------------------------------------------------------------------------

GOOD = [line.rstrip(b"\n") for line in gzip.open(WIKI_DUMP)]
BAD = [  # (line, reason or None when the record is valid but yields nothing)
    (b'{"title": "x", "text": ', "malformed_json"),
    (b'{"title":"\xff\xfe","text":"\\u672c\\u6587\\u3067\\u3059\\u3002"}', "invalid_utf8"),
    (b'{"title":"no text"}', "missing_field"),
    (b'{"text":"\\u30bf\\u30a4\\u30c8\\u30eb\\u304c\\u306a\\u3044\\u30da\\u30fc\\u30b8\\u3002"}',
     "missing_field"),
    (b'{"title":"t","text":42}', "wrong_type"),
    (b'{"title":{"a":1},"text":"x"}', "wrong_type"),
    (b'{"title":"nul","text":"raw\x00nul"}', "malformed_json"),
    (b"[1,2,3]", "not_an_object"),
]


def bad_dump(tmp_path) -> pathlib.Path:
    """The real dump with bad records between its pages, a NUL-escaped page, a 1 MB
    one-sentence page and an empty page."""
    lines = list(GOOD[:10])
    for line, _ in BAD:
        lines += [b'{"index":{"_id":"x"}}', line]
    escaped_nul = json.dumps({"page_id": 9001, "title": "NUL",
                              "text": "ヌル文字を含む\x00文です。"}).encode()
    assert b"\\u0000" in escaped_nul
    huge = json.dumps({"page_id": 9002, "title": "huge", "text": "あ" * 1_000_000}).encode()
    empty = b'{"page_id":9003,"title":"empty","text":""}'
    for line in (escaped_nul, huge, empty):
        lines += [b'{"index":{"_id":"y"}}', line]
    lines += GOOD[10:]
    path = tmp_path / "bad.json.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def test_bad_records_are_counted_dead_lettered_and_never_end_the_file(tmp_path,
                                                                      reference_wiki_docs):
    manifest = run(tmp_path, "--num-shards", 2, inputs=(bad_dump(tmp_path),))
    s = manifest["summary"]
    expected = {}
    for _, reason in BAD:
        expected[reason] = expected.get(reason, 0) + 1
    expected.update({"empty_text": 1, "no_sentences_kept": 1})
    assert s["documents"]["dropped"] == expected
    assert s["documents"]["in"] == 50 + len(BAD) + 3
    assert s["documents"]["out"] == 51  # every real page, and the NUL page cleaned
    assert s["accounted"] and s["dead_letters"] == len(BAD)
    assert manifest["counts"]["sentences.filtered.too_long"] >= 1  # the 1 MB sentence
    docs = [d for shard in shard_documents(manifest) for d in shard]
    assert multiset(reference_wiki_docs["unidic_lite"]) <= multiset(docs)
    assert ("ヌル文字を含む文です。",) in docs
    dead = [json.loads(line) for line in read_text(manifest["outputs_prefix"]
                                                   + ".dead-letter.jsonl").splitlines()]
    assert sorted((d["line"], d["reason"]) for d in dead) == [
        (12 + 2 * i, reason) for i, (_, reason) in enumerate(BAD)]
    assert all(d["source"].endswith("bad.json.gz") and d["detail"] for d in dead)


def test_a_line_above_the_limit_is_dead_lettered_unread(tmp_path):
    manifest = run(tmp_path, "--num-shards", 1, "--max-line-bytes", 2_000_000,
                   inputs=(bad_dump(tmp_path),))
    s = manifest["summary"]
    assert s["documents"]["dropped"]["line_too_long"] == 1
    assert "no_sentences_kept" not in s["documents"]["dropped"]
    assert s["accounted"] and s["documents"]["out"] == 51


def test_truncated_gzip_stops_the_job_naming_the_file(tmp_path):
    data = WIKI_DUMP.read_bytes()
    truncated = tmp_path / "truncated.json.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception, match=r"truncated\.json\.gz.*truncated or corrupt"):
        run(tmp_path, inputs=(truncated,))


def test_missing_input_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        run(tmp_path, inputs=(tmp_path / "nope.json.gz",))
    assert err.value.code == 2
    assert "matches no file" in capsys.readouterr().err


def test_reference_order_one_shard_is_make_corpus_wiki_byte_for_byte(tmp_path):
    manifest = run(tmp_path, "--num-shards", 1, "--reference-order")
    expected = read_text(FIXTURES / "reference" / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz")
    [shard] = [o for o in manifest["outputs"] if o["role"] == "shard"]
    assert read_text(shard["path"]) == expected


def test_reference_order_shards_are_contiguous_runs_of_the_dump(tmp_path):
    manifest = run(tmp_path, "--num-shards", 3, "--reference-order", "--gzip")
    shards = sorted((o for o in manifest["outputs"] if o["role"] == "shard"),
                    key=lambda o: o["shard"])
    expected = read_text(FIXTURES / "reference" / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz")
    assert len(shards) == 3
    # Shards are cut at 4,096-line granularity: this 100-line dump fills one shard.
    assert "".join(read_text(o["path"]) for o in shards) == expected


def test_beam_counters_name_every_reason(tmp_path):
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter

    from pipelines.options import LOCAL_RUNNER

    config = wiki_corpus.WikiCorpusConfig(inputs=(str(bad_dump(tmp_path)),),
                                          output=str(tmp_path / "m"), num_shards=2)
    pipeline = beam.Pipeline(runner=LOCAL_RUNNER)
    wiki_corpus.build(pipeline, config)
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(
        MetricsFilter().with_namespace("bertjp"))["counters"]}
    assert counters["dropped.malformed_json"] == 2
    assert counters["dropped.missing_field"] == 2
    assert counters["dropped.invalid_utf8"] == 1
    assert counters["dropped.empty_text"] == 1
    assert counters["documents_out"] == 51 and counters["action_lines"] == 61


@pytest.mark.parametrize("suffix", [".json.bz2", ".json"])
def test_bz2_and_uncompressed_dumps(tmp_path, suffix, reference_wiki_docs):
    import bz2

    data = gzip.decompress(WIKI_DUMP.read_bytes())
    path = tmp_path / f"jawiki-cirrussearch-content{suffix}"
    path.write_bytes(bz2.compress(data) if suffix.endswith("bz2") else data)
    manifest = run(tmp_path, "--num-shards", 2, inputs=(path,))
    docs = [d for shard in shard_documents(manifest) for d in shard]
    assert multiset(docs) == multiset(reference_wiki_docs["unidic_lite"])
