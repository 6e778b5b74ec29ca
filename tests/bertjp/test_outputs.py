"""Output naming rules: shard names, stale shards, files against their manifest."""

import fnmatch

from bertjp import outputs
from bertjp.manifest import from_json


def test_prefix_of_shard_only_accepts_shard_names():
    assert outputs.prefix_of_shard("a/corpus-00001-of-00004.txt.gz") == "a/corpus"
    assert outputs.prefix_of_shard("gs://b/wiki-00000-of-00002.tfrecord.gz") == "gs://b/wiki"
    assert outputs.prefix_of_shard("a/corpus-1-of-4.txt") is None
    assert outputs.prefix_of_shard("a/corpus.manifest.json") is None
    assert outputs.prefix_of_shard("a/corpus-00000-of-00004.txt.tmp-1a2b") is None


def test_globs_escape_the_prefix():
    name = "a[1]/c-00000-of-00002.txt"
    assert fnmatch.fnmatchcase(name, outputs.shard_glob("a[1]/c"))
    assert not fnmatch.fnmatchcase("a1/c-00000-of-00002.txt", outputs.shard_glob("a[1]/c"))
    assert fnmatch.fnmatchcase("a*b/c-00000-of-00002.txt.tmp-99/x",
                               outputs.temp_glob("a*b/c") + "/*")
    assert outputs.glob_escape("x?y*[z]") == "x[?]y[*][[]z]"


def test_stale_outputs_are_other_shard_names_of_the_prefix():
    existing = ["p-00000-of-00003.txt", "p-00001-of-00003.txt", "p-00002-of-00003.txt",
                "p-00000-of-00002.txt.gz", "p-00001-of-00002.txt.gz", "p.manifest.json"]
    expected = ["p-00000-of-00002.txt.gz", "p-00001-of-00002.txt.gz"]
    assert outputs.stale_outputs(existing, expected) == existing[:3]


def _output(name, role, size):
    return {"path": f"/old/place/{name}", "role": role, "records": 1, "lines": 1,
            "bytes": size, "sha256": "0" * 64}


def _manifest(*shards):
    return from_json({"command": "wiki-corpus", "config": {}, "outputs": [
        _output(name, "shard", size) for name, size in shards] + [
        _output("p.dead-letter.jsonl", "dead_letter", 0)]})


def test_files_matching_the_manifest_have_no_problem():
    manifest = _manifest(("p-00000-of-00002.txt", 10), ("p-00001-of-00002.txt", 20))
    matched = {"/new/p-00000-of-00002.txt": 10, "/new/p-00001-of-00002.txt": 20}
    assert outputs.manifest_problems(matched, manifest, "/new/p.manifest.json") == []


def test_an_extra_a_truncated_and_a_missing_file_are_each_named():
    manifest = _manifest(("p-00000-of-00003.txt", 10), ("p-00001-of-00003.txt", 20),
                         ("p-00002-of-00003.txt", 30))
    matched = {"/d/p-00000-of-00003.txt": 10, "/d/p-00001-of-00003.txt": 7,
               "/d/p-00000-of-00005.txt": 99}
    problems = outputs.manifest_problems(matched, manifest, "/d/p.manifest.json")
    assert len(problems) == 3
    assert "p-00000-of-00005.txt is not in /d/p.manifest.json" in problems[0]
    assert "p-00001-of-00003.txt has 7 bytes, /d/p.manifest.json says 20" in problems[1]
    assert "1 of the 3 files" in problems[2] and "p-00002-of-00003.txt" in problems[2]


def test_check_matched_files_groups_by_prefix_and_skips_prefixes_without_manifest():
    manifests = {"/d/a.manifest.json": _manifest(("a-00000-of-00001.txt", 5))}
    matched = {"/d/a-00000-of-00001.txt": 6, "/d/b-00000-of-00001.txt": 1, "/d/notes.txt": 3}
    problems = outputs.check_matched_files(matched, manifests.get)
    assert len(problems) == 1 and "a-00000-of-00001.txt has 6 bytes" in problems[0]


def test_files_named_one_by_one_may_be_a_subset_but_a_glob_must_match_all():
    manifests = {"/d/a.manifest.json": _manifest(("a-00000-of-00002.txt", 5),
                                                 ("a-00001-of-00002.txt", 6))}
    matched = {"/d/a-00000-of-00002.txt": 5}
    assert outputs.check_matched_files(matched, manifests.get,
                                       frozenset({"/d/a-00000-of-00002.txt"})) == []
    [problem] = outputs.check_matched_files(matched, manifests.get)
    assert "1 of the 2 files" in problem
    assert outputs.has_glob("/d/a-*") and not outputs.has_glob("/d/a-00000-of-00002.txt")
