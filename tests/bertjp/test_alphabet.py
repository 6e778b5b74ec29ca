import unicodedata

from bertjp.alphabet import alphabet_from_lex_csv, unidic_lite_alphabet
from bertjp.tokenization import load_vocab
from tests.conftest import REFERENCE


def test_packaged_alphabet_is_the_released_vocabulary_block():
    alphabet = unidic_lite_alphabet()
    assert len(alphabet) == 7012
    released = load_vocab(REFERENCE / "vocab" / "wordpiece_unidic_lite" / "vocab.txt")
    assert alphabet == released[15:7027]
    assert alphabet[:3] == [" ", "!", '"'] and alphabet[-3:] == ["𢌞", "𣗄", "𥝱"]
    assert alphabet == sorted(alphabet) and len(set(alphabet)) == 7012
    assert all(len(c) == 1 and c.isprintable() and unicodedata.normalize("NFKC", c) == c
               for c in alphabet)


def test_lex_csv_rules(tmp_path):
    # lex.csv layout: surface, left id, right id, cost, features...
    rows = [
        "東京,1,1,100,名詞,固有名詞",
        "Ａｂ,1,1,100,名詞,一般",        # NFKC per character: A, b
        "①,1,1,100,記号,一般",           # -> 1
        "㍍,1,1,100,名詞,助数詞",         # NFKC gives 4 characters: skipped
        '"""",1,1,100,補助記号,括弧開',  # a quoted "
        '"",1,1,100,補助記号,括弧閉',    # an empty surface stands for "
        "\u3000,1,1,100,空白,*",          # ideographic space -> " "
        "a\u200bb,1,1,100,名詞,一般",     # a zero-width space is not printable
    ]
    path = tmp_path / "lex.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert alphabet_from_lex_csv(path) == [" ", '"', "1", "A", "a", "b", "京", "東"]
