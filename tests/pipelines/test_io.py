"""``MatchInputs`` and ``WriteShards`` on their own, on files in ``tmp_path``."""

import gzip
import hashlib
import json

import apache_beam as beam
import pytest
from apache_beam.io.filesystem import BeamIOError
from apache_beam.testing.util import assert_that, equal_to

from bertjp.sharding import stable_key
from pipelines.io import MatchInputs
from pipelines.shards import WriteShards, _clean_up_after, shard_path
from tests.pipelines.test_stats import local_pipeline


def test_match_inputs_gives_each_matched_file_once(tmp_path):
    for name in ("a.txt", "b.txt", "c.gz"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / "d.txt").mkdir()  # a folder that a glob matches is no input
    with local_pipeline() as p:
        paths = p | MatchInputs([f"{tmp_path}/*.txt", f"{tmp_path}/a.txt", f"{tmp_path}/c.*"])
        assert_that(paths, equal_to([str(tmp_path / n) for n in ("a.txt", "b.txt", "c.gz")]))


def test_a_pattern_that_matches_nothing_fails_the_job_naming_it(tmp_path):
    (tmp_path / "a.txt").write_text("x\n")
    missing = f"{tmp_path}/corpus-*.txt"
    with pytest.raises(BeamIOError, match="corpus-"):
        with local_pipeline() as p:
            _ = p | MatchInputs([f"{tmp_path}/a.txt", missing])


def records(n: int, seed: int = 0) -> list[tuple[int, bytes]]:
    """``n`` records keyed by seeded hashes, ``doc i\\n`` each."""
    return [(stable_key(seed, str(i)), f"doc {i}\n".encode()) for i in range(n)]


def write(tmp_path, elements, num_shards: int, **kwargs) -> tuple[list[str], list]:
    """Runs ``WriteShards`` on ``elements``; returns the shard paths and the stats."""
    tmp_path.mkdir(exist_ok=True)
    prefix = str(tmp_path / "out")
    paths = [shard_path(prefix, i, num_shards, ".txt") for i in range(num_shards)]
    stats_file = tmp_path / "stats.json"

    def keep(stats):
        stats_file.write_text(json.dumps(sorted(stats, key=lambda s: s[1]["shard"])))

    with local_pipeline() as p:
        stats = p | beam.Create(elements) | WriteShards(paths, chunk_bytes=40, **kwargs)
        _ = stats | beam.combiners.ToList() | beam.Map(keep)
    return paths, json.loads(stats_file.read_text())


def test_shards_hold_the_records_in_key_order_split_in_key_ranges(tmp_path):
    data = records(50)
    paths, stats = write(tmp_path, data, 3)
    contents = [open(p, "rb").read() for p in paths]
    assert b"".join(contents) == b"".join(v for _, v in sorted(data))
    assert all(contents)  # 50 equal records over 3 shards: none empty
    assert [s[1]["records"] for s in stats] == [c.count(b"\n") for c in contents]
    for (kind, out), path, content in zip(stats, paths, contents, strict=True):
        assert kind == "output" and out["path"] == path and out["role"] == "shard"
        assert out["sha256"] == hashlib.sha256(content).hexdigest()
        assert out["bytes"] == len(content) and out["lines"] == out["records"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.rsplit("/", 1)[1] for p in paths] + ["stats.json"])  # the temporary folder is gone


def test_the_same_records_give_the_same_bytes_whatever_their_order(tmp_path):
    data = records(30)
    first, _ = write(tmp_path / "a", data, 2)
    second, _ = write(tmp_path / "b", data[::-1], 2)
    assert [open(p, "rb").read() for p in first] == [open(p, "rb").read() for p in second]


def test_every_shard_is_written_even_without_records(tmp_path):
    paths, stats = write(tmp_path, records(1), 3, role="dead_letter")
    assert sorted(len(open(p, "rb").read()) > 0 for p in paths) == [False, False, True]
    assert [s[1]["role"] for s in stats] == ["dead_letter"] * 3


def test_compressed_batched_shards_sum_a_count_per_file(tmp_path):
    data = [(k, v, i % 3) for i, (k, v) in enumerate(records(20))]
    batches = [data[:7], data[7:]]
    paths, stats = write(tmp_path, batches, 2, compress=True, batched=True,
                         count_name="masked_tokens")
    plain = [gzip.decompress(open(p, "rb").read()) for p in paths]
    assert b"".join(plain) == b"".join(r[1] for r in sorted(data))
    assert sum(s[1]["masked_tokens"] for s in stats) == sum(r[2] for r in data)
    assert [s[1]["content_sha256"] for s in stats] == [
        hashlib.sha256(c).hexdigest() for c in plain]


def test_cleaning_up_removes_the_temporary_folder_and_passes_the_stats_on(tmp_path):
    temp = tmp_path / "out.tmp-0123"
    temp.mkdir()
    (temp / "chunk-0000000").write_bytes(b"x")
    stats = [("output", {"path": "p"})]
    assert _clean_up_after(stats, str(temp)) is stats
    assert not temp.exists()
    assert _clean_up_after(stats, str(temp)) is stats  # already gone: nothing to do
