"""Character offsets of tokens in the original text: every token's span normalises back to
the token, tokens and ids stay those of ``encode``, and the JSQuAD sample's gold answers
map to token spans (with the listed exceptions)."""

import collections
import json
import lzma
import pickle
import random
import unicodedata

import pytest

from bertjp.mecab import NUL
from bertjp.offsets import (
    OffsetToken,
    nfkc_alignment,
    span_text,
    token_span,
    tokens_covering,
)
from bertjp.tokenization import SPECIAL_TOKENS, JapaneseTokenizer, _lower_except_special, _parts
from tests.conftest import FIXTURES, REFERENCE

VOCAB = {sub: REFERENCE / "vocab" / f"{sub}_unidic_lite" / "vocab.txt"
         for sub in ("wordpiece", "character")}
JSQUAD = FIXTURES / "jglue" / "jsquad-test-v1.3.first2articles.json"
CONFIGS = [(sub, lower) for sub in VOCAB for lower in (False, True)]


@pytest.fixture(scope="module")
def tokenizers():
    return {(sub, lower): JapaneseTokenizer(VOCAB[sub], subword=sub, do_lower_case=lower)
            for sub, lower in CONFIGS}


def jsquad_paragraphs():
    with open(JSQUAD, encoding="utf-8") as f:
        data = json.load(f)["data"]
    return [p for article in data for p in article["paragraphs"]]


def golden_lines(step=10):
    name = "wiki_unidic_lite.wordpiece.lower_false.jsonl.xz"
    with lzma.open(REFERENCE / "tokenization" / name, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f][::step]


TRICKY = [
    "①②③の番号", "ｶﾞｽ代とﾊﾟﾝ", "㍻31年（㌍）", "ＡＢＣとＸＹＺ、ＧＤＰは１．５％", "İstanbulのΣΟΦΙΑ",
    "か\u3099き\u3099と\u1100\u1161\u11a8", "a\u0301\u0316e\u0316\u0301",
    "  東京\x00都 \t大阪\n\r京都\u3000",
    "語\x1c句\u2028です\x85か\x0cな", "カフェcaféに行った。𠮷野家", "[MASK]と[SEP]と[UNK]",
    "ﾌﾗﾝｽ語でcafé au lait", "x" * 150 + "の長い語", "\x00\x00", "\u00a0\u2003",
]


def normalise(tok, text):
    """What the tokenizer makes of a piece of the original text (before MeCab)."""
    if tok.do_lower_case:
        text = _lower_except_special(text)
    text = unicodedata.normalize("NFKC", text)
    return text.lower() if tok.do_lower_case and text not in SPECIAL_TOKENS else text


def check_offsets(tok, text):
    """The properties every ``tokenize_with_offsets`` result has; returns the tokens."""
    tokens = tok.tokenize_with_offsets(text)
    assert [(t.token, t.id) for t in tokens] == list(zip(*tok.encode(text), strict=True))
    covered = [False] * len(text)
    for k, t in enumerate(tokens):
        assert 0 <= t.start < t.end <= len(text)
        if k:
            assert tokens[k - 1].start <= t.start and tokens[k - 1].end <= t.end
        covered[t.start:t.end] = [True] * (t.end - t.start)
        span = normalise(tok, text[t.start:t.end])
        piece = t.token[2:] if t.token.startswith("##") else t.token
        if t.token != tok.unk_token:
            assert piece in span, (t, span)
        shared = any(u.start < t.end and t.start < u.end
                     for u in tokens[max(k - 1, 0):k] + tokens[k + 1:k + 2])
        if not shared and t.token != tok.unk_token:
            assert span == piece, (t, span)  # the span is exactly the token's characters
    # Only whitespace (and NUL, a word boundary) is left out.
    lost = [ch for ch, c in zip(text, covered, strict=True) if not c]
    assert all(ch == NUL or not unicodedata.normalize("NFKC", ch).strip() for ch in lost), lost
    return tokens


# ----------------------------------------------------------------- the offsets API


def test_span_text_is_a_slice_of_the_original_text():
    text = "梅雨 [SEP] 梅雨（つゆ）"
    assert span_text(text, 11, 15) == text[11:15] == "（つゆ）"
    assert span_text(text, 0, 0) == ""
    for start, end in ((-1, 2), (3, 2), (0, len(text) + 1)):
        with pytest.raises(ValueError, match="not inside"):
            span_text(text, start, end)


def test_token_span_and_tokens_covering():
    tokens = [OffsetToken("平", 1, 0, 1), OffsetToken("##成", 2, 0, 1), OffsetToken("31", 3, 1, 3),
              OffsetToken("年", 4, 4, 5)]
    assert token_span(tokens, 0, 1) == (0, 1)
    assert token_span(tokens, 1, 3) == (0, 5)
    assert tokens_covering(tokens, 0, 1) == (0, 1)
    assert tokens_covering(tokens, 2, 3) == (2, 2)  # inside a token: the whole token
    assert tokens_covering(tokens, 1, 5) == (2, 3)
    assert tokens_covering(tokens, 3, 4) is None  # a space between tokens
    assert tokens_covering(tokens, 2, 2) is None
    with pytest.raises(ValueError, match="not inside"):
        token_span(tokens, 2, 4)
    with pytest.raises(AttributeError):
        tokens[0].start = 3  # frozen


@pytest.mark.parametrize("text,normalized,spans", [
    ("abc", "abc", [(0, 1), (1, 2), (2, 3)]),
    ("①", "1", [(0, 1)]),
    ("㍻元", "平成元", [(0, 1), (0, 1), (1, 2)]),
    ("ｶﾞｽ", "ガス", [(0, 2), (2, 3)]),
    ("か\u3099x", "がx", [(0, 2), (2, 3)]),
    ("\u1100\u1161\u11a8가", "각가", [(0, 3), (3, 4)]),
    ("a\u0301\u0316b", "á\u0316b", [(0, 3), (0, 3), (3, 4)]),  # reordered: one group
    ("ＡＢ\u3000", "AB ", [(0, 1), (1, 2), (2, 3)]),
    ("", "", []),
])
def test_nfkc_alignment(text, normalized, spans):
    out, starts, ends = nfkc_alignment(text)
    assert out == normalized == unicodedata.normalize("NFKC", text)
    assert list(zip(starts, ends, strict=True)) == spans


@pytest.mark.parametrize("word", ["語", "語\x1c句", "\u2028a\x85b\x0c", "a b\tc", " "])
def test_parts_are_str_split_with_positions(word):
    parts = _parts(word)
    assert [p for p, _ in parts] == word.split()
    assert all(word[at:at + len(p)] == p for p, at in parts)


# ------------------------------------------------------------------- hand cases


@pytest.mark.parametrize("sub,lower,text,expected", [
    ("wordpiece", False, "①番目のｶﾞｽ", "1:① 番:番 目:目 の:の ガス:ｶﾞｽ"),
    ("character", False, "①番目のｶﾞｽ", "1:① 番:番 目:目 の:の ガ:ｶﾞ ##ス:ｽ"),
    ("wordpiece", False, "㍻31年", "平成:㍻ 31:31 年:年"),
    ("character", False, "㍻31年", "平:㍻ ##成:㍻ 3:3 ##1:1 年:年"),
    ("wordpiece", False, "ＡＢＣとabc", "ABC:ＡＢＣ と:と ab:ab ##c:c"),
    ("wordpiece", True, "ＡＢＣとabc", "ab:ＡＢ ##c:Ｃ と:と ab:ab ##c:c"),
    ("character", True, "ＡＢＣ", "a:Ａ ##b:Ｂ ##c:Ｃ"),
    ("wordpiece", False, "  東京\x00都 \t大阪\n", "東京:東京 都:都 大阪:大阪"),
    ("character", False, "東京\x00都", "東:東 ##京:京 都:都"),
    ("wordpiece", False, "カフェcaféに", "カフェ:カフェ [UNK]:café に:に"),
    ("character", False, "café", "c:c ##a:a ##f:f [UNK]:é"),
    ("wordpiece", True, "İ", "i:İ [UNK]:İ"),  # lowercasing makes i + U+0307
    ("wordpiece", False, "[SEP]", "[:[ SE:SE ##P:P ]:]"),  # literal [SEP] is text
    ("wordpiece", False, "\x00 \u3000", ""),
])
def test_hand_cases(tokenizers, sub, lower, text, expected):
    tok = tokenizers[sub, lower]
    tokens = check_offsets(tok, text)
    got = " ".join(f"{t.token}:{text[t.start:t.end]}" for t in tokens)
    assert got == expected


def test_spans_index_the_original_text(tokenizers):
    text = "　①　ｶﾞｽ　"  # full-width spaces are dropped, positions stay those of the text
    tokens = tokenizers["wordpiece", False].tokenize_with_offsets(text)
    assert [(t.token, t.start, t.end) for t in tokens] == [("1", 1, 2), ("ガス", 3, 6)]


@pytest.mark.parametrize("sub,lower", CONFIGS)
def test_tricky_texts(tokenizers, sub, lower):
    for text in TRICKY:
        check_offsets(tokenizers[sub, lower], text)


@pytest.mark.parametrize("sub,lower", CONFIGS)
def test_golden_lines(tokenizers, sub, lower):
    for text in golden_lines():
        check_offsets(tokenizers[sub, lower], text)


# Characters that NFKC composes, expands, reorders; that lowercasing lengthens; that
# MeCab or str.split drop.
FUZZ_ALPHABET = list(
    "あかがカｶﾞﾟﾊﾟｰ①㍻㌍ＡＢａｂAbİıΣσςﬁﬃ½²\u3000 \t\x00\x0b\x0c\x1c\u2028\x85\n\r東京語。、「」"
    "（）[]SEPMASK\u3099\u309a\u0301\u0316\u1100\u1161\u11a8가\u0307é\u2126\u212b\u1e9b\u0323"
    "\U0002000b\ufe0f\u200d")


@pytest.mark.parametrize("sub,lower", CONFIGS)
def test_random_mixtures_of_awkward_characters(tokenizers, sub, lower):
    rng = random.Random(20240101)
    for _ in range(300):
        text = "".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(1, 20)))
        check_offsets(tokenizers[sub, lower], text)


def test_a_long_text_with_nuls_is_parsed_in_pieces(tokenizers):
    tok = tokenizers["wordpiece", False]
    text = "\x00".join(["長い文書の文です。"] * 8_000)  # over MAX_PARSE_CHARS
    tokens = check_offsets(tok, text)
    assert tokens[-1].end == len(text)


def test_pickle_round_trip_keeps_offsets(tokenizers):
    tok = tokenizers["character", True]
    before = tok.tokenize_with_offsets("ＧＤＰは１．５％増加")
    clone = pickle.loads(pickle.dumps(tok))
    assert clone._span_cache == {}
    assert clone.tokenize_with_offsets("ＧＤＰは１．５％増加") == before


# ------------------------------------------------------------------------ JSQuAD

# Gold answers whose boundary falls inside a token, so no token span equals them:
# (question id, answer, why). The same for both lowercasing settings; with the
# character vocabulary every answer maps (its tokens are characters).
WORDPIECE_EXCEPTIONS = {
    ("a10717p0q0", "パ", "ends inside パシフィック (one MeCab word, one WordPiece token)"),
    ("a10717p65q1", "玉西武ライオンズ", "starts inside 埼玉 (one MeCab word, one WordPiece token)"),
    ("a10717p73q0", "黄色", "ends inside 黄色い (one MeCab word, one WordPiece token)"),
    ("a10717p73q1", "ライオン", "ends inside ライオンズ (one MeCab word, one WordPiece token)"),
    ("a10717p73q2", "黄色", "ends inside 黄色い (one MeCab word, one WordPiece token)"),
}


def why_not(context, tokens, first, last, start, end):
    reasons = []
    for k, inside, where in ((first, tokens[first].start < start, "starts"),
                             (last, tokens[last].end > end, "ends")):
        if inside:
            t = tokens[k]
            whole = not t.token.startswith("##") and (
                k + 1 == len(tokens) or not tokens[k + 1].token.startswith("##"))
            kind = "one MeCab word, one WordPiece token" if whole else "a WordPiece piece"
            reasons.append(f"{where} inside {context[t.start:t.end]} ({kind})")
    return "; ".join(reasons)


@pytest.mark.parametrize("sub,lower", CONFIGS)
def test_jsquad_contexts_and_gold_answers(tokenizers, sub, lower):
    tok = tokenizers[sub, lower]
    paragraphs = jsquad_paragraphs()
    assert len(paragraphs) == 103
    counts = collections.Counter()
    exceptions = set()
    for paragraph in paragraphs:
        context = paragraph["context"]
        tokens = check_offsets(tok, context)
        for qa in paragraph["qas"]:
            for answer in qa["answers"]:
                start = answer["answer_start"]
                end = start + len(answer["text"])
                assert context[start:end] == answer["text"]
                covering = tokens_covering(tokens, start, end)
                assert covering is not None
                text = span_text(context, *token_span(tokens, *covering))
                assert answer["text"] in text
                if text == answer["text"]:
                    counts["exact"] += 1
                else:
                    counts["inexact"] += 1
                    exceptions.add((qa["id"], answer["text"],
                                    why_not(context, tokens, *covering, start, end)))
    assert counts["exact"] + counts["inexact"] == 1160
    if sub == "wordpiece":
        assert exceptions == WORDPIECE_EXCEPTIONS
        assert counts == {"exact": 1148, "inexact": 12}
    else:
        assert counts == {"exact": 1160}
