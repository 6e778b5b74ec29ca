"""The runtime tokenizer against the reference's goldens, transformers, and bad input; the
settings a tokenizer directory states."""

import json
import lzma
import pickle
import re

import pytest

from bertjp.tokenization import JapaneseTokenizer, load_vocab
from bertjp.vocab_files import (
    TokenizerSettings,
    character_vocab,
    read_tokenizer_config,
    resolve_settings,
    tokenizer_files,
)
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
    assert tok.token_codes(text) == [i << 1 | t.startswith("##")
                                     for t, i in zip(tokens, ids, strict=True)]


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


@pytest.mark.parametrize("sub", ["wordpiece", "character"])
def test_a_nul_is_a_word_boundary(tokenizers, sub):
    # MeCab stops reading at a NUL: before, this gave 二 番 目 and lost the rest.
    tok = tokenizers[sub, False]
    assert tok.words("二番目の\x00文です。") == ["二", "番", "目", "の", "文", "です", "。"]
    assert tok.encode("二番目の\x00文です。") == tok.encode("二番目の 文です。")
    long = "\x00".join(["長い文書の文です。"] * 10_000)  # fed to MeCab in pieces
    assert tok.token_codes(long) == tok.token_codes(long.replace("\x00", " "))


def test_unk_code_counts_unknown_tokens(tokenizers):
    for sub, unknown in (("wordpiece", 1), ("character", 1)):
        tok = tokenizers[sub, False]
        codes = tok.token_codes("カフェcaféに行った。")
        assert tok.unk_code == tok.ids["[UNK]"] << 1 and codes.count(tok.unk_code) == unknown


# --------------------------------------------------------------- tokenizer settings


def _stated(subword="wordpiece", dictionary="unidic-lite"):
    data = tokenizer_files(character_vocab(), subword, dictionary)["tokenizer_config.json"]
    return read_tokenizer_config(data, "tok/tokenizer_config.json")


def _dictionary_dir(path):
    path.mkdir()
    (path / "sys.dic").write_bytes(b"")
    (path / "mecabrc").write_text("")
    return str(path)


def test_a_written_tokenizer_config_reads_back():
    assert _stated("character") == TokenizerSettings("character", False, "unidic-lite", None)
    assert _stated("wordpiece", "ipadic") == TokenizerSettings("wordpiece", False, "ipadic", None)


def test_a_dictionary_directory_reads_back_from_mecab_option(tmp_path):
    dicdir = _dictionary_dir(tmp_path / "dic")
    stated = _stated("wordpiece", dicdir)
    assert (stated.mecab_dict, stated.mecabrc) == (dicdir, f"{dicdir}/mecabrc")
    quoted = json.dumps({"mecab_kwargs": {"mecab_dic": None,
                                          "mecab_option": f'-d "{dicdir}" -r "{dicdir}/mecabrc"'}})
    assert read_tokenizer_config(quoted, "c.json") == TokenizerSettings(
        None, None, dicdir, f"{dicdir}/mecabrc")
    assert read_tokenizer_config("{}", "c.json") == TokenizerSettings()


@pytest.mark.parametrize("config,message", [
    ("[1]", "not a JSON object"),
    ("{", "not valid JSON"),
    ({"tokenizer_class": "BertTokenizer"}, "tokenizer_class 'BertTokenizer'"),
    ({"word_tokenizer_type": "basic"}, "word_tokenizer_type 'basic'"),
    ({"do_subword_tokenize": False}, "do_subword_tokenize false"),
    ({"subword_tokenizer_type": "sentencepiece"}, "subword_tokenizer_type 'sentencepiece'"),
    ({"do_lower_case": "no"}, "do_lower_case must be true or false"),
    ({"mecab_kwargs": {"mecab_dic": "unidic"}}, "mecab_dic 'unidic' is not supported"),
    ({"mecab_kwargs": {"mecab_dic": None, "mecab_option": "-Owakati"}}, "only -d"),
    ({"mecab_kwargs": {"mecab_dic": None}}, "names no dictionary"),
])
def test_a_tokenizer_config_bertjp_cannot_reproduce_is_an_error(config, message):
    text = config if isinstance(config, str) else json.dumps(config)
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        read_tokenizer_config(text, "dir/tokenizer_config.json")
    assert str(err.value).startswith("dir/tokenizer_config.json")


def test_the_directory_sets_what_it_states_and_flags_the_rest():
    stated = _stated("character")
    assert resolve_settings(stated, TokenizerSettings()) == stated
    # flags that agree are fine; nothing stated: the flags, then the defaults
    agree = TokenizerSettings("character", False, "unidic_lite", None)
    assert resolve_settings(stated, agree) == stated
    assert resolve_settings(None, TokenizerSettings()) == TokenizerSettings(
        "wordpiece", False, "unidic-lite", None)
    assert resolve_settings(None, TokenizerSettings("character", True, "ipadic")) == \
        TokenizerSettings("character", True, "ipadic", None)
    partial = TokenizerSettings(subword="character")
    assert resolve_settings(partial, TokenizerSettings(do_lower_case=True, mecab_dict="ipadic")) \
        == TokenizerSettings("character", True, "ipadic", None)


@pytest.mark.parametrize("flags,message", [
    (TokenizerSettings(subword="wordpiece"),
     "--subword wordpiece contradicts tok/tokenizer_config.json (subword_tokenizer_type: "
     "character); drop --subword"),
    (TokenizerSettings(mecab_dict="ipadic"),
     "--mecab-dict ipadic contradicts tok/tokenizer_config.json (mecab_kwargs: unidic-lite)"),
])
def test_a_flag_that_contradicts_the_directory_is_an_error(flags, message):
    with pytest.raises(ValueError) as err:
        resolve_settings(_stated("character"), flags, "tok/tokenizer_config.json")
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_lowercasing_restores_the_reference_over_a_cased_directory_but_not_the_converse():
    # --do-lower-case is the documented switch back to the reference's default lowercasing.
    assert resolve_settings(_stated("character"), TokenizerSettings(do_lower_case=True),
                            "tok/tokenizer_config.json").do_lower_case is True
    lowercased = TokenizerSettings("character", True, "unidic_lite", None)
    with pytest.raises(ValueError, match=r"^--no-do-lower-case contradicts tok/tokenizer_config"
                       r"\.json \(do_lower_case: true\)"):
        resolve_settings(lowercased, TokenizerSettings(do_lower_case=False),
                         "tok/tokenizer_config.json")


def test_dictionary_directories_agree_by_path(tmp_path):
    dicdir = _dictionary_dir(tmp_path / "dic")
    other = _dictionary_dir(tmp_path / "other")
    stated = _stated("wordpiece", dicdir)
    assert resolve_settings(stated, TokenizerSettings(mecab_dict=dicdir + "/")) == stated
    with pytest.raises(ValueError, match=r"^--mecab-dict .*other contradicts c\.json"):
        resolve_settings(stated, TokenizerSettings(mecab_dict=other), "c.json")
    with pytest.raises(ValueError, match=r"^c\.json: MeCab dictionary '/nowhere'"):
        resolve_settings(TokenizerSettings(mecab_dict="/nowhere"), TokenizerSettings(), "c.json")
