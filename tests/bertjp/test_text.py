import pytest

from bertjp.text import clean_wiki_text, normalize_cc100_line

# Examples verified against the reference make_corpus_wiki.py (recipe §2.2).
CLEAN_CASES = [
    # NFKC: … → ...
    ("東京都[1]は…である[要出典]。人口は多い[2][3]。", None, "東京都は...である。人口は多い。"),
    ("本文である。 ^ 脚注1 本文続き。", None, "本文である。"),
    ("ＡＢＣ　ｶﾀｶﾅ①㍍\u200bゼロ幅\tタブ\n改行。", None, "ABC カタカナ1メートルゼロ幅タブ改行。"),
    ("これは[注 1]テスト[a]です。[どれ?]あれ。", None, "これはあれ。"),
    ("{{Infobox}}本文。{{a}}", None, "本文。"),
    ("地理 > 日本 > 東京都 東京都は首都。", "東京都", " 東京都は首都。".strip()),
    ("地理 > 日本 > 東京都 東京都は首都。", None, "地理 > 日本 > 東京都 東京都は首都。"),
    ("ヌル\x00文字。", None, "ヌル文字。"),
    ("", "t", ""),
]


@pytest.mark.parametrize("text,title,expected", CLEAN_CASES)
def test_clean_wiki_text(text, title, expected):
    assert clean_wiki_text(text, title) == expected


def test_breadcrumb_title_is_escaped():
    assert clean_wiki_text("A > C++ 本文。", "C++") == "本文。"


@pytest.mark.parametrize("line,expected", [
    ("  全角\u3000空白  と\tタブ \n", "全角 空白 と タブ"),
    ("\x1c\x1d", ""),
    ("a\u00a0b", "a b"),
])
def test_normalize_cc100_line(line, expected):
    assert normalize_cc100_line(line) == expected
