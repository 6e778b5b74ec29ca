import pickle

import pytest

from bertjp.mecab import MecabDictionary, output_formats
from bertjp.sentences import SentenceFilter, SentenceSplitter

UNIDIC = SentenceSplitter()
IPADIC = SentenceSplitter(MecabDictionary("ipadic"))


@pytest.mark.parametrize("splitter,text,expected", [
    # Closing brackets after 。 start the next sentence (recipe §2.3, verified).
    (UNIDIC, "「彼は『行く。』と言った。」", ["「彼は『行く。", "』と言った。", "」"]),
    # unidic-lite: . ! ? are 補助記号-句点 too, IPADIC: only 。
    (UNIDIC, "最大7.5ゲーム差!本当?はい。", ["最大7.", "5ゲーム差!", "本当?", "はい。"]),
    (IPADIC, "最大7.5ゲーム差!本当?はい。", ["最大7.5ゲーム差!本当?はい。"]),
    # Whitespace MeCab skips stays inside the slices; the tail is a sentence too.
    (UNIDIC, "一文目。  二文目。 残り", ["一文目。", "  二文目。", " 残り"]),
    (UNIDIC, "", []),
    (UNIDIC, "句点という名詞は区切りではない", ["句点という名詞は区切りではない"]),
])
def test_split(splitter, text, expected):
    assert splitter.split(text) == expected


def test_splitter_is_picklable_and_rebuilds_its_tagger():
    splitter = SentenceSplitter()
    splitter.split("準備。")
    clone = pickle.loads(pickle.dumps(splitter))
    assert clone._tagger is None
    assert clone.split("一。二。") == ["一。", "二。"]


def test_dictionary_directory_behaves_like_the_packaged_one():
    import ipadic

    by_path = SentenceSplitter(MecabDictionary(ipadic.DICDIR))
    text = "モーニング娘。のメンバー。1.5倍!"
    assert by_path.split(text) == IPADIC.split(text)


def test_bad_dictionary_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="sys.dic"):
        MecabDictionary(str(tmp_path))


def test_default_output_formats_come_from_dicrc():
    node, unk = output_formats(MecabDictionary())
    assert node.startswith(r"%m\t%f[9]")  # unidic-lite's output-format-type = unidic
    assert unk.startswith(r"%m\t%m")
    assert output_formats(MecabDictionary("ipadic")) == (r"%m\t%H\n", r"%m\t%H\n")


def test_filter_strips_and_counts_reasons():
    kept, dropped = SentenceFilter(3, 6)([" abc ", "ab", "abcdefg", "a\\displaystyle", "abcd"])
    assert kept == ["abc", "abcd"]
    assert dropped == {"too_short": 1, "too_long": 2}
    kept, dropped = SentenceFilter(3, 20)(["x\\displaystyle y"])
    assert kept == [] and dropped == {"displaystyle": 1}


def test_filter_rejects_bad_bounds():
    with pytest.raises(ValueError):
        SentenceFilter(10, 5)


def test_long_text_parsed_in_pieces_gives_the_same_sentences():
    import gzip
    import json

    from bertjp.text import clean_wiki_text
    from tests.conftest import WIKI_DUMP

    pages = [json.loads(line) for line in gzip.open(WIKI_DUMP)][1::2]
    text = " ".join(clean_wiki_text(p["text"], p["title"]) for p in pages)
    assert len(text) > 200_000
    whole = SentenceSplitter(max_parse_chars=10**7).split(text)
    assert SentenceSplitter(max_parse_chars=5000).split(text) == whole
    assert SentenceSplitter(max_parse_chars=777).split(text) == whole


def test_megabyte_sentence_does_not_crash_mecab():
    # fugashi's own parse() segfaults on this input; the pieces keep MeCab safe.
    sentences = SentenceSplitter().split("あ" * 1_000_000)
    assert "".join(sentences) == "あ" * 1_000_000
