import json

import pytest

from bertjp.tokenization import JapaneseTokenizer, load_vocab
from bertjp.vocab_files import character_vocab, special_tokens, write_tokenizer_dir
from tests.conftest import REFERENCE

RELEASED = REFERENCE / "vocab" / "wordpiece_unidic_lite" / "vocab.txt"
TEXT = "東北大学で自然言語処理を研究しています。iPhoneは[MASK]です。"


def test_character_vocab_is_the_reference_head_7027():
    assert character_vocab() == load_vocab(REFERENCE / "vocab" / "character_unidic_lite"
                                           / "vocab.txt")
    assert special_tokens(2)[-2:] == ["[unused0]", "[unused1]"]


@pytest.mark.parametrize("subword", ["wordpiece", "character"])
def test_transformers_loads_the_directory_offline(tmp_path, monkeypatch, subword):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    vocab = load_vocab(RELEASED) if subword == "wordpiece" else character_vocab()
    write_tokenizer_dir(str(tmp_path), vocab, subword)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is False and config["subword_tokenizer_type"] == subword
    hf = AutoTokenizer.from_pretrained(str(tmp_path))
    assert type(hf).__name__ == "BertJapaneseTokenizer"
    assert hf.word_tokenizer.__class__.__name__ == "MecabTokenizer"
    ours = JapaneseTokenizer(vocab, subword=subword)
    _, our_ids = ours.encode(TEXT.replace("[MASK]", "猫"))
    assert hf.convert_tokens_to_ids(hf.tokenize(TEXT.replace("[MASK]", "猫"))) == our_ids
    assert hf.mask_token_id == 4 and hf.tokenize("[MASK]") == ["[MASK]"]  # special at inference


def test_bad_vocabularies_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        write_tokenizer_dir(str(tmp_path), ["[UNK]", "[UNK]"], "wordpiece")
    with pytest.raises(ValueError, match="line breaks"):
        write_tokenizer_dir(str(tmp_path), ["[UNK]", "a\nb"], "wordpiece")
    with pytest.raises(ValueError, match="sys.dic"):
        write_tokenizer_dir(str(tmp_path), ["[UNK]"], "wordpiece", dictionary="/my/dic")


def test_a_dictionary_directory_is_written_as_a_mecab_option(tmp_path, monkeypatch):
    import ipadic

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    write_tokenizer_dir(str(tmp_path), load_vocab(RELEASED), "wordpiece",
                        dictionary=ipadic.DICDIR)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["mecab_kwargs"]["mecab_option"].startswith(f"-d {ipadic.DICDIR} -r ")
    hf = AutoTokenizer.from_pretrained(str(tmp_path))
    ipa = AutoTokenizer.from_pretrained(str(tmp_path), mecab_kwargs={"mecab_dic": "ipadic"})
    assert hf.tokenize("最大7.5ゲーム差!") == ipa.tokenize("最大7.5ゲーム差!")
