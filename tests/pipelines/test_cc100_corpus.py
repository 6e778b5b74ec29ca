"""The cc100-corpus job on the DirectRunner with the real CC-100-style fixture."""

import json
import lzma
import pathlib

import pytest

from bertjp.sharding import stable_key
from pipelines import cc100_corpus
from tests.conftest import CC100, REFERENCE, documents_of, multiset, read_text, shard_documents


def run(tmp_path, *extra, inputs=(CC100,)):
    argv = ["--input", *map(str, inputs), "--output", str(tmp_path / "cc100"), *map(str, extra)]
    return cc100_corpus.run(argv)


@pytest.fixture(scope="module")
def reference_docs():
    files = sorted((REFERENCE / "merge_split_corpora" / "cc100_n5").glob("corpus_*.txt.gz"))
    return [d for f in files for d in documents_of(read_text(f))]


@pytest.mark.parametrize("num_shards", [2, 4, 5, 7, 14])
def test_any_number_of_shards_holds_every_reference_document_once(tmp_path, num_shards,
                                                                  reference_docs):
    manifest = run(tmp_path, "--num-shards", num_shards, "--gzip")
    shards = shard_documents(manifest)
    assert len(shards) == num_shards
    assert multiset(d for s in shards for d in s) == multiset(reference_docs)
    sizes = [o["content_bytes"] for o in manifest["outputs"] if o["role"] == "shard"]
    largest = max(len("\n".join(d).encode()) + 2 for d in reference_docs)
    assert max(sizes) - min(sizes) <= 2 * largest
    s = manifest["summary"]
    assert s["documents"] == {"in": 536, "out": 536, "dropped": {}}
    assert s["sentences"]["kept"] == 1579 and s["accounted"]


def test_first_document_can_land_in_the_first_shard():
    # The reference can never put it in corpus_01; here its key is uniform.
    top_bits = {stable_key(seed, "cc100:ja.txt.xz:0") >> 62 for seed in range(20)}
    assert top_bits == {0, 1}


def test_documents_are_never_glued_across_files(tmp_path, reference_docs):
    lines = lzma.decompress(CC100.read_bytes()).split(b"\n")
    cut = 5  # inside the first document (桜桃): no blank line at the end of part 1
    assert lines[cut - 1] and lines[cut]
    first, second = tmp_path / "a.txt", tmp_path / "b.txt.gz"
    first.write_bytes(b"\n".join(lines[:cut]))
    import gzip

    second.write_bytes(gzip.compress(b"\n".join(lines[cut:])))
    manifest = run(tmp_path, "--num-shards", 3, inputs=(first, second))
    docs = [d for s in shard_documents(manifest) for d in s]
    head = tuple(" ".join(x.decode().split()) for x in lines[: lines.index(b"")])
    assert head in reference_docs
    assert head not in docs
    assert head[:cut] in docs and head[cut:] in docs
    assert len(docs) == 537


def test_invalid_utf8_line_is_dead_lettered_and_the_document_kept(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes("一行目です。\n".encode() + b"\xff\xfe broken\n"
                     + "三行目。\n\n次。\n".encode())
    manifest = run(tmp_path, "--num-shards", 1, inputs=(path,))
    assert shard_documents(manifest)[0] == [("一行目です。", "三行目。"), ("次。",)]
    s = manifest["summary"]
    assert s["lines_dropped"] == {"invalid_utf8": 1} and s["dead_letters"] == 1
    [dead] = [json.loads(x) for x in read_text(
        pathlib.Path(manifest["outputs_prefix"] + ".dead-letter.jsonl")).splitlines()]
    assert (dead["line"], dead["reason"]) == (2, "invalid_utf8")
    assert dead["source"].endswith("bad.txt") and "broken" in dead["excerpt"]


def test_truncated_xz_stops_the_job_naming_the_file(tmp_path):
    truncated = tmp_path / "ja.truncated.txt.xz"
    truncated.write_bytes(CC100.read_bytes()[:100_000])
    with pytest.raises(Exception, match=r"ja\.truncated\.txt\.xz.*truncated or corrupt"):
        run(tmp_path, inputs=(truncated,))


# --- --reference-sharding: merge_split_corpora.py, file for file ---------------------------

MERGE_SPLIT = REFERENCE / "merge_split_corpora"


@pytest.mark.parametrize("run_name,source,num_shards", [
    ("cc100_n5", CC100, 5),
    ("cc100_n64", CC100, 64),
    ("wiki_n8", REFERENCE / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz", 8),
])
def test_reference_sharding_writes_the_reference_files_byte_for_byte(tmp_path, run_name,
                                                                     source, num_shards):
    expected = json.loads((MERGE_SPLIT / run_name / "MANIFEST.json").read_text())
    manifest = run(tmp_path, "--num-shards", num_shards, "--reference-sharding", "--gzip",
                   inputs=(source,))
    shards = sorted((o for o in manifest["outputs"] if o["role"] == "shard"),
                    key=lambda o: o["shard"])
    assert [o["content_sha256"] for o in shards] == [f["sha256"] for f in expected["files"]]
    assert [o["records"] for o in shards] == [f["documents"] for f in expected["files"]]
    assert manifest["summary"]["accounted"]


def test_reference_sharding_refuses_an_n_where_the_reference_crashes(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        run(tmp_path, "--num-shards", 4, "--reference-sharding")
    assert err.value.code == 2
    assert "merge_split_corpora.py crashes for N = 4" in capsys.readouterr().err
