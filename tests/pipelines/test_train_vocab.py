"""The train-vocab job on the DirectRunner with the reference corpus of the fixtures."""

import json

import pytest

from bertjp.tokenization import JapaneseTokenizer, load_vocab
from bertjp.vocab_files import character_vocab
from pipelines import train_vocab
from tests.conftest import REFERENCE

CORPUS = REFERENCE / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz"
RELEASED = REFERENCE / "vocab" / "wordpiece_unidic_lite" / "vocab.txt"


def run(out, *extra, inputs=(CORPUS,)):
    return train_vocab.run(["--input", *map(str, inputs), "--output", str(out),
                            *map(str, extra)])


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory):
    out = tmp_path_factory.mktemp("vocab") / "wordpiece"
    return out, run(out, "--vocab-size", 12000)


def test_wordpiece_directory_loads_in_transformers(wordpiece, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    out, manifest = wordpiece
    vocab = load_vocab(out / "vocab.txt")
    assert len(vocab) == 12000 and vocab[:7027] == load_vocab(RELEASED)[:7027]
    hf = AutoTokenizer.from_pretrained(str(out))
    text = "東北大学で自然言語処理を研究しています。"
    assert hf.tokenize(text) == JapaneseTokenizer(vocab).tokenize(text)
    s = manifest["summary"]
    assert s["documents"] == {"in": 4417, "out": 4417, "dropped": {}} and s["accounted"]
    assert 0.99 < s["alphabet_coverage"] <= 1
    [vocab_out] = [o for o in manifest["outputs"] if o["role"] == "vocab"]
    assert vocab_out["distinct_words"] > 10000 and vocab_out["records"] == 12000


def test_two_worker_processes_train_the_same_vocabulary(wordpiece, tmp_path):
    out, _ = wordpiece
    run(tmp_path / "v2", "--vocab-size", 12000, "--direct_running_mode", "multi_processing",
        "--direct_num_workers", 2)
    assert (tmp_path / "v2" / "vocab.txt").read_bytes() == (out / "vocab.txt").read_bytes()


def test_character_vocabulary(tmp_path):
    run(tmp_path / "char", "--subword", "character")
    assert load_vocab(tmp_path / "char" / "vocab.txt") == character_vocab()
    config = json.loads((tmp_path / "char" / "tokenizer_config.json").read_text())
    assert config["subword_tokenizer_type"] == "character"


def test_bad_lines_are_counted_and_never_crash(tmp_path):
    corpus = tmp_path / "bad.txt"
    corpus.write_bytes(
        "カフェcaféに行った。\n\n   \n".encode() + b"\xff\xfe broken\n"
        + "𠮷野家で食べた。\n".encode() + ("あ" * 1_000_000 + "\n").encode())
    manifest = run(tmp_path / "v", "--vocab-size", 7100, inputs=(corpus,))
    s = manifest["summary"]
    assert s["documents"]["dropped"] == {"invalid_utf8": 1} and s["dead_letters"] == 1
    assert s["documents"]["out"] == 3 and s["accounted"]
    assert s["alphabet_coverage"] < 1
    vocab = load_vocab(tmp_path / "v" / "vocab.txt")
    assert not any(ch in t for t in vocab for ch in "é𠮷")


def test_vocab_size_below_the_alphabet_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run(tmp_path / "x", "--vocab-size", 100)
    assert "--vocab-size must exceed" in capsys.readouterr().err


def test_alphabet_from_a_file_and_from_lex_csv(tmp_path):
    alphabet = tmp_path / "alphabet.txt"
    alphabet.write_text("\n".join(" 。あいうえおかきくけこ") + "\n", encoding="utf-8")
    run(tmp_path / "a", "--subword", "character", "--alphabet", alphabet)
    assert load_vocab(tmp_path / "a" / "vocab.txt")[15:] == sorted(" 。あいうえおかきくけこ")
    lex = tmp_path / "lex.csv"
    lex.write_text("ＡＢ,1,1,1,名詞\n㍍,1,1,1,名詞\n猫,1,1,1,名詞\n", encoding="utf-8")
    run(tmp_path / "b", "--subword", "character", "--lex-csv", lex)
    assert load_vocab(tmp_path / "b" / "vocab.txt")[15:] == ["A", "B", "猫"]


def test_every_input_is_read_and_a_nul_reads_as_a_space(tmp_path):
    # Before, a repeated --input kept only the last file, and MeCab stopped at a NUL
    # (二 番 目: the rest of the line and the word before the NUL were lost).
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("二番目の\x00文です。\n", encoding="utf-8")
    second.write_text("東北大学で研究しています。\n", encoding="utf-8")
    manifest = train_vocab.run(["--input", str(first), "--input", str(second), "--output",
                                str(tmp_path / "v"), "--subword", "character"])
    words = JapaneseTokenizer(character_vocab(), subword="character")
    expected = sum(len(words.words(t)) for t in ("二番目の 文です。", "東北大学で研究しています。"))
    assert len(manifest["inputs"]) == 2 and manifest["summary"]["documents"]["in"] == 2
    assert manifest["counts"]["words"] == expected == 16
    assert manifest["counts"]["nul_characters"] == manifest["summary"]["nul_characters"] == 1


def test_low_alphabet_coverage_is_a_warning(tmp_path, capsys):
    corpus = tmp_path / "ko.txt"
    corpus.write_text("한국어 문장입니다.\n이것은 일본어가 아닙니다.\n日本語の文です。\n",
                      encoding="utf-8")
    manifest = run(tmp_path / "v", "--subword", "character", inputs=(corpus,))
    s = manifest["summary"]
    assert s["alphabet_coverage"] < 0.5
    [warning] = s["warnings"]
    assert "are in the alphabet" in warning and "--alphabet" in warning
    assert warning in capsys.readouterr().err


def test_input_flags_extend():
    args = train_vocab.make_parser().parse_args(
        ["--input", "a", "b", "--input", "c", "--output", "d"])
    assert train_vocab.config_from_args(args).inputs == ("a", "b", "c")
