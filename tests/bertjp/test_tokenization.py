"""The runtime tokenizer against the reference's goldens, transformers, and bad input."""

import json
import lzma
import pickle

import pytest

from bertjp.tokenization import JapaneseTokenizer, load_vocab
from tests.conftest import REFERENCE

VOCAB = {sub: REFERENCE / "vocab" / f"{sub}_unidic_lite" / "vocab.txt"
         for sub in ("wordpiece", "character")}


@pytest.fixture(scope="module")
def tokenizers():
    return {(sub, lower): JapaneseTokenizer(VOCAB[sub], subword=sub, do_lower_case=lower)
            for sub in VOCAB for lower in (False, True)}


def goldens(sub, lower):
    name = f"wiki_unidic_lite.{sub}.lower_{str(lower).lower()}.jsonl.xz"
    with lzma.open(REFERENCE / "tokenization" / name, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("sub", ["wordpiece", "character"])
@pytest.mark.parametrize("lower", [False, True])
def test_every_golden_line_matches_the_reference(tokenizers, sub, lower):
    tok = tokenizers[sub, lower]
    records = goldens(sub, lower)
    assert len(records) == 4417
    mismatches = [r["text"] for r in records if tok.encode(r["text"]) != (r["tokens"], r["ids"])]
    assert mismatches == []


def test_vocab_keeps_the_single_space_token():
    vocab = load_vocab(VOCAB["wordpiece"])
    assert len(vocab) == 32768 and vocab[15] == " " and vocab[:5] == [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(load_vocab(VOCAB["character"])) == 7027


@pytest.mark.parametrize("sub,lower,text,expected", [
    # The lowercasing trap (recipe §7): the reference's pretraining data is lowercased.
    ("wordpiece", True, "AppleのiPhone 15を買った。",
     "a ##pp ##le の i ##ph ##one 15 を 買っ た 。"),
    ("wordpiece", False, "AppleのiPhone 15を買った。", "Apple の iPhone 15 を 買っ た 。"),
    ("wordpiece", True, "ＧＤＰは１．５％増加した", "g ##d ##p は 1 . 5 % 増加 し た"),
    ("wordpiece", False, "ＧＤＰは１．５％増加した", "GDP は 1 . 5 % 増加 し た"),
    ("wordpiece", False, "ﾗｰﾒﾝ", "ラーメン"),
    ("wordpiece", False, "カフェcaféに行った。", "カフェ [UNK] に 行っ た 。"),
    ("character", False, "カフェcaféに行った。", "カ ##フ ##ェ c ##a ##f [UNK] に 行 ##っ た 。"),
    ("wordpiece", False, "𠮷", "[UNK]"),
    # A literal [MASK] is text, not a special token (as in the reference).
    ("wordpiece", True, "[MASK]", "[ m ##as ##k ]"),
    ("wordpiece", False, "", ""),
    ("wordpiece", False, " \u3000\t ", ""),
])
def test_documented_examples(tokenizers, sub, lower, text, expected):
    assert tokenizers[sub, lower].tokenize(text) == (expected.split(" ") if expected else [])


def test_character_ids_ignore_the_grouping_marks(tokenizers):
    tok = tokenizers["character", False]
    tokens, ids = tok.encode("日本")  # one MeCab word
    assert tokens == ["日", "##本"]
    assert ids == tok.convert_tokens_to_ids(["日", "本"]) == [2698, 2822]
    # Codes keep the mark the ids lose: id << 1 | continuation.
    assert tok.token_codes("日本") == [2698 << 1, 2822 << 1 | 1]
    assert tok.code_of("[CLS]") == tok.ids["[CLS]"] << 1


def test_codes_are_ids_and_continuation_marks(tokenizers):
    tok = tokenizers["wordpiece", False]
    text = "東北大学で自然言語処理を研究しています。"
    tokens, ids = tok.encode(text)
    assert tok.token_codes(text) == [i << 1 | t.startswith("##") for t, i in zip(tokens, ids, strict=True)]


def test_words_longer_than_100_characters_are_one_unk(tokenizers):
    tok = tokenizers["wordpiece", False]  # MeCab itself cuts long runs, so test words
    [(tokens, ids, _)] = tok.encode_words(["a" * 101])
    assert tokens == ("[UNK]",) and ids == (1,)
    [(tokens, _, _)] = tok.encode_words(["a" * 100])
    assert "[UNK]" not in tokens and "".join(tokens).replace("##", "") == "a" * 100


def test_a_megabyte_line_does_not_crash(tokenizers):
    tokens, ids = tokenizers["wordpiece", False].encode("あ" * 1_000_000)
    assert len(tokens) == len(ids) > 0


def test_pickle_round_trip_rebuilds_mecab(tokenizers):
    tok = tokenizers["character", True]
    text = "東北大学で自然言語処理を研究しています。"
    before = tok.encode(text)
    clone = pickle.loads(pickle.dumps(tok))
    assert clone._tagger is None and clone._cache == {}
    assert clone.encode(text) == before


def test_same_tokens_as_transformers_bert_japanese_tokenizer(tokenizers):
    from transformers import BertJapaneseTokenizer

    hf = BertJapaneseTokenizer(str(VOCAB["wordpiece"]), do_lower_case=False,
                               word_tokenizer_type="mecab", subword_tokenizer_type="wordpiece",
                               mecab_kwargs={"mecab_dic": "unidic_lite"})
    ours = tokenizers["wordpiece", False]
    lines = [r["text"] for r in goldens("wordpiece", False)][::10]
    assert [ours.tokenize(t) for t in lines] == [hf.tokenize(t) for t in lines]


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(ValueError, match="subword"):
        JapaneseTokenizer(VOCAB["wordpiece"], subword="bpe")
    with pytest.raises(ValueError, match=r"\[UNK\]"):
        JapaneseTokenizer(["a", "b"])
