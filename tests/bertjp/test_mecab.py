"""MeCab input: NUL characters, pieces, dictionaries."""

import pytest

from bertjp.mecab import NUL, MecabDictionary, safe_pieces
from bertjp.sentences import SentenceSplitter


def test_a_nul_reaches_mecab_as_a_space():
    # MeCab reads a C string: it would stop at the NUL and lose the rest.
    text = "一文目。二番目の\x00文です。" + "\x00" * 3
    assert "".join(safe_pieces(text)) == text.replace(NUL, " ")
    assert "".join(safe_pieces("NULのない文。")) == "NULのない文。"


def test_nul_pieces_keep_the_offsets_of_the_text():
    text = ("あ" * 40 + "。" + "\x00") * 5
    pieces = list(safe_pieces(text, 64))
    assert len(pieces) > 1 and all(NUL not in p for p in pieces)
    assert [len(p) for p in pieces] == [len(p) for p in safe_pieces(text.replace(NUL, " "), 64)]
    assert sum(len(p.encode("utf-8")) for p in pieces) == len(text.encode("utf-8"))


def test_sentence_splitting_goes_on_after_a_nul():
    # Before: MeCab stopped at the NUL, and the last two sentences came out as one.
    sentences = SentenceSplitter().split("一文目。二番目の\x00文です。三文目。")
    assert sentences == ["一文目。", "二番目の\x00文です。", "三文目。"]


def test_a_long_text_with_nuls_is_split_everywhere():
    text = "\x00".join(f"これは{i}番目の文です。" for i in range(8000))  # > 65,536 characters
    sentences = SentenceSplitter().split(text)
    assert len(sentences) == 8000 and "".join(sentences) == text


@pytest.mark.parametrize("a,b,same", [
    (MecabDictionary("unidic-lite"), MecabDictionary("unidic_lite"), True),
    (MecabDictionary("unidic-lite"), MecabDictionary("ipadic"), False),
    (MecabDictionary("ipadic"), MecabDictionary("ipadic", "/dev/null"), False),
])
def test_dictionaries_compare_by_what_they_load(a, b, same):
    assert (a.canonical == b.canonical) is same


def test_a_dictionary_directory_compares_by_its_paths(tmp_path):
    (tmp_path / "sys.dic").write_bytes(b"")
    (tmp_path / "mecabrc").write_text("")
    (tmp_path / "other.rc").write_text("")
    plain = MecabDictionary(str(tmp_path))
    spelled = MecabDictionary(str(tmp_path) + "/.", str(tmp_path / "mecabrc"))
    assert plain.canonical == spelled.canonical
    assert plain.canonical != MecabDictionary(str(tmp_path), str(tmp_path / "other.rc")).canonical
