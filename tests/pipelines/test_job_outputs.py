"""What every pipeline command does around its outputs: repeated flags, the output rule,
earlier runs' shards, inputs against their manifest, Ctrl-C, and results that kept nothing."""

import gzip
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from pipelines import (
    cc100_corpus,
    common,
    pretraining_data,
    runner,
    sample_sentences,
    shards,
    train_vocab,
    wiki_corpus,
)
from tests.conftest import CC100, ROOT, WIKI_DUMP, read_text

BERTJP = [sys.executable, "-m", "bertjp_cli"]
PARSERS = {
    "wiki-corpus": wiki_corpus.make_parser,
    "cc100-corpus": cc100_corpus.make_parser,
    "sample-sentences": sample_sentences.make_parser,
    "train-vocab": train_vocab.make_parser,
    "pretraining-data": pretraining_data.make_parser,
}


def cli(*args, timeout=300):
    return subprocess.run([*BERTJP, *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def wiki(tmp_path, *extra, name="corpus"):
    return wiki_corpus.run(["--input", str(WIKI_DUMP), "--output", str(tmp_path / name),
                            *map(str, extra)])


# --- several inputs ------------------------------------------------------------------------

@pytest.mark.parametrize("command", sorted(PARSERS))
def test_a_repeated_input_flag_keeps_every_value(command):
    parser = PARSERS[command]()
    args, _ = parser.parse_known_args(["--input", "a", "--input", "b", "c", "--output", "o",
                                       "--vocab", "v", "--num-sentences", "1"])
    assert args.input == ["a", "b", "c"]


def test_both_forms_of_several_inputs_read_every_file(tmp_path):
    first, second = tmp_path / "one.txt", tmp_path / "two.txt"
    first.write_text("一つ目の文です。\n二つ目の文です。\n", encoding="utf-8")
    second.write_text("三つ目の文です。\n", encoding="utf-8")
    repeated = sample_sentences.run(["--input", str(first), "--input", str(second),
                                     "--output", str(tmp_path / "a.txt"),
                                     "--num-sentences", "10"])
    listed = sample_sentences.run(["--input", str(first), str(second),
                                   "--output", str(tmp_path / "b.txt"), "--num-sentences", "10"])
    assert repeated["summary"]["documents"]["out"] == listed["summary"]["documents"]["out"] == 3
    assert len(repeated["inputs"]) == 2
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()


# --- earlier runs' shards, and readers against the manifest ----------------------------------

def test_a_rerun_with_other_shards_removes_the_earlier_ones_and_says_so(tmp_path, capsys):
    wiki(tmp_path, "--num-shards", 3)
    first = sorted(p.name for p in tmp_path.glob("corpus-*"))
    assert first == [f"corpus-0000{i}-of-00003.txt" for i in range(3)]
    manifest = wiki(tmp_path, "--num-shards", 2, "--gzip")
    assert sorted(p.name for p in tmp_path.glob("corpus-*")) == [
        f"corpus-0000{i}-of-00002.txt.gz" for i in range(2)]
    assert [pathlib.Path(p).name for p in manifest["replaced"]] == first
    on_disk = json.loads((tmp_path / "corpus.manifest.json").read_text())
    assert on_disk["replaced"] == manifest["replaced"]
    assert "replaced:    3 file(s) of an earlier run removed" in capsys.readouterr().out
    # The next stage reads this run's documents once, not both runs'.
    sample = sample_sentences.run(["--input", str(tmp_path / "corpus-*"), "--output",
                                   str(tmp_path / "s.txt"), "--num-sentences", "100000"])
    assert sample["summary"]["documents"]["out"] == 4417


@pytest.fixture
def corpus_run(tmp_path):
    wiki(tmp_path, "--num-shards", 2)
    return tmp_path


def _sample(corpus_dir, *extra):
    return sample_sentences.run(["--input", str(corpus_dir / "corpus-*"), "--output",
                                 str(corpus_dir / "s.txt"), "--num-sentences", "5",
                                 *extra])


def test_a_reader_refuses_a_file_the_manifest_does_not_list(corpus_run):
    extra = corpus_run / "corpus-00000-of-00003.txt"
    extra.write_bytes((corpus_run / "corpus-00000-of-00002.txt").read_bytes())
    with pytest.raises(ValueError, match="corpus-00000-of-00003.txt is not in .*corpus.manifest"):
        _sample(corpus_run)
    assert _sample(corpus_run, "--skip-manifest-check")["summary"]["documents"]["out"] == 5


def test_a_reader_refuses_a_truncated_or_missing_shard(corpus_run):
    shard = corpus_run / "corpus-00001-of-00002.txt"
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corpus-00001-of-00002.txt has 1,000 bytes"):
        _sample(corpus_run)
    shard.unlink()
    with pytest.raises(ValueError, match="1 of the 2 files"):
        _sample(corpus_run)


# --- the output rule -----------------------------------------------------------------------

def test_one_output_rule(tmp_path):
    assert common.resolve_output("d/", "prefix", "corpus") == "d/corpus"
    assert common.resolve_output("d/x", "prefix", "corpus") == "d/x"
    assert common.resolve_output("gs://b/d/", "dir") == "gs://b/d"
    with pytest.raises(ValueError, match="is a folder"):
        common.resolve_output("d/", "file")
    with pytest.raises(ValueError, match="is a folder"):
        common.resolve_output(str(tmp_path), "file")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        common.resolve_output(str(tmp_path / "f"), "dir")


def test_sample_sentences_refuses_a_folder_output_before_any_work(tmp_path):
    result = cli("sample-sentences", "--input", CC100, "--output", f"{tmp_path}/",
                 "--num-sentences", 10)
    assert result.returncode == 2 and "is a folder" in result.stderr
    assert "running on" not in result.stderr and list(tmp_path.iterdir()) == []


def test_an_unwritable_output_fails_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    result = cli("cc100-corpus", "--input", CC100, "--output", blocker / "out" / "corpus")
    assert result.returncode == 1
    assert "cannot write there" in result.stderr and "running on" not in result.stderr


def test_an_output_with_glob_characters_is_a_literal_name(tmp_path):
    out = tmp_path / "a[1]" / "c"
    (tmp_path / "a1").mkdir()  # what a glob "a[1]" would match instead
    manifest = cc100_corpus.run(["--input", str(CC100), "--output", str(out),
                                 "--num-shards", "2", "--gzip"])
    assert sorted(p.name for p in (tmp_path / "a[1]").iterdir()) == [
        "c-00000-of-00002.txt.gz", "c-00001-of-00002.txt.gz", "c.dead-letter.jsonl",
        "c.manifest.json"]
    assert sum(s["documents"] for s in manifest["summary"]["shards"]) == 536
    assert list((tmp_path / "a1").iterdir()) == []


# --- Ctrl-C and interrupted runs ------------------------------------------------------------

class _Interrupt(Exception):
    pass


def test_a_shard_appears_under_its_final_name_only_when_complete(tmp_path, monkeypatch):
    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(3):
        (parts / f"chunk-{i:07d}").write_bytes(b"x" * (3 << 20))
    final = tmp_path / "out-00000-of-00001.txt.gz"
    fn = shards.FinalizeShardFn([str(final)], True, None, str(parts))
    real_open, opened = shards.FileSystems.open, []

    def interrupted_open(path, *args, **kwargs):
        opened.append(path)
        if len(opened) == 2:  # Ctrl-C while the second part is copied in
            raise _Interrupt
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(shards.FileSystems, "open", interrupted_open)
    element = (0, [(i, str(parts / f"chunk-{i:07d}"), 1, 3 << 20, 0, 0) for i in range(3)])
    with pytest.raises(_Interrupt):
        list(fn.process(element))
    assert not final.exists()
    monkeypatch.setattr(shards.FileSystems, "open", real_open)
    list(fn.process(element))
    assert len(gzip.decompress(final.read_bytes())) == 9 << 20


def _big_dump(path: pathlib.Path, copies: int) -> None:
    """The fixture dump repeated under other page ids: a job of a few seconds."""
    lines = gzip.decompress(WIKI_DUMP.read_bytes()).split(b"\n")
    with open(path, "wb") as f:
        for copy in range(copies):
            for line in lines:
                if not line.strip():
                    continue
                page = json.loads(line)
                if "page_id" in page:
                    page["page_id"] = f"{page['page_id']}-{copy}"
                f.write(json.dumps(page, ensure_ascii=False).encode() + b"\n")


def test_ctrl_c_exits_130_removes_temporary_files_and_leaves_no_partial_shard(tmp_path):
    dump = tmp_path / "dump.json"
    _big_dump(dump, 20)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*BERTJP, "wiki-corpus", "--input", str(dump), "--output", f"{out}/",
         "--num-shards", "4", "--gzip", "--chunk-mb", "0.05"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and any("-of-" in p.name and ".tmp-" in p.name for p in out.iterdir()):
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("bertjp wiki-corpus: interrupted: removed")
    assert "rerun the same command" in last and "Traceback" not in stderr
    names = [p.name for p in out.iterdir()] if out.exists() else []
    assert not [n for n in names if ".tmp-" in n]
    assert "corpus.manifest.json" not in names
    for name in names:  # whatever shard exists is complete
        if name.endswith(".gz"):
            gzip.decompress((out / name).read_bytes())


def test_a_rerun_removes_what_an_interrupted_run_left(tmp_path, capsys):
    left = tmp_path / "corpus-00000-of-00002.txt.tmp-0123456789ab"
    left.mkdir()
    (left / "chunk-0000000").write_bytes(b"half a chunk")
    (tmp_path / "corpus.manifest.json.tmp-0123456789ab").write_text("{")
    wiki(tmp_path, "--num-shards", 2)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert "removed 2 temporary file(s) an interrupted run left" in capsys.readouterr().err


# --- results that kept nothing ---------------------------------------------------------------

def test_a_file_that_is_not_a_dump_is_an_error_not_an_empty_success(tmp_path):
    with pytest.raises(runner.EmptyResult, match="Cirrussearch content dump") as err:
        wiki_corpus.run(["--input", str(CC100), "--output", str(tmp_path / "c")])
    assert "nothing was kept" in str(err.value) and "malformed_json" in str(err.value)
    manifest = wiki_corpus.run(["--input", str(CC100), "--output", str(tmp_path / "c"),
                                "--allow-empty"])
    assert manifest["summary"]["documents"]["out"] == 0


def test_a_corpus_of_blank_lines_is_an_error(tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n  \n")
    result = cli("cc100-corpus", "--input", blank, "--output", tmp_path / "c")
    assert result.returncode == 1
    assert "no documents in blank.txt (3 lines, all blank)" in result.stderr


def test_a_binary_file_as_a_corpus_is_an_error(tmp_path):
    binary = tmp_path / "model.bin"
    # Like a real binary: mostly invalid UTF-8, with some lines that happen to decode.
    binary.write_bytes(b"".join(bytes([0x80 + i % 64, i % 256]) + b"\n" if i % 4 else
                                b"ELF\x01\x02\n" for i in range(1, 400)))
    with pytest.raises(runner.EmptyResult, match="not what this command reads"):
        sample_sentences.run(["--input", str(binary), "--output", str(tmp_path / "s.txt"),
                              "--num-sentences", "10"])


def test_a_sample_much_smaller_than_the_corpus_is_not_almost_nothing(tmp_path):
    manifest = sample_sentences.run(["--input", str(CC100), "--output", str(tmp_path / "s"),
                                     "--num-sentences", "3"])
    assert manifest["summary"]["documents"]["out"] == 3
    assert read_text(tmp_path / "s").count("\n") == 3


def test_shards_named_one_by_one_may_be_a_subset(corpus_run):
    manifest = sample_sentences.run(["--input", str(corpus_run / "corpus-00000-of-00002.txt"),
                                     "--output", str(corpus_run / "s.txt"),
                                     "--num-sentences", "5"])
    assert manifest["summary"]["documents"]["out"] == 5


VOCAB = ROOT / "tests" / "fixtures" / "reference" / "vocab" / "wordpiece_unidic_lite"


def test_pretraining_data_output_folder_gets_a_stem_not_a_hidden_manifest(corpus_run):
    out = corpus_run / "records"
    pretraining_data.run(["--input", str(corpus_run / "corpus-*"), "--vocab", str(VOCAB),
                          "--output", f"{out}/", "--num-shards", "2", "--dupe-factor", "1"])
    assert sorted(p.name for p in out.iterdir()) == [
        "pretraining-00000-of-00002.tfrecord.gz", "pretraining-00001-of-00002.tfrecord.gz",
        "pretraining.dead-letter.jsonl", "pretraining.manifest.json"]


def test_pretraining_data_on_blank_lines_is_an_error(tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n" * 50)
    result = cli("pretraining-data", "--input", blank, "--vocab", VOCAB, "--output",
                 tmp_path / "p")
    assert result.returncode == 1
    assert "no documents in blank.txt (50 lines, all blank); is it a corpus" in result.stderr
    allowed = cli("pretraining-data", "--input", blank, "--vocab", VOCAB, "--output",
                  tmp_path / "p", "--allow-empty")
    assert allowed.returncode == 0 and "warning: no documents" in allowed.stderr
