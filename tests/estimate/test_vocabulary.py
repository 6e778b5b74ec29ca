"""The estimate's vocabulary and tokenizer settings (``bertjp_cli.estimate.vocabulary``)."""

from __future__ import annotations

import pytest

from bertjp.vocab_files import character_vocab, write_tokenizer_dir
from bertjp_cli.estimate.vocabulary import load_vocabulary
from tests.conftest import REFERENCE

VOCAB = REFERENCE / "vocab" / "wordpiece_unidic_lite"


@pytest.fixture(scope="module")
def char_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "character_unidic_lite"
    write_tokenizer_dir(str(path), character_vocab(), "character")
    return path


def test_the_directorys_tokenizer_config_decides_the_subword_type(char_dir):
    for given in (str(char_dir), str(char_dir / "vocab.txt")):
        vocabulary = load_vocabulary(given, None)
        assert vocabulary.settings.subword == "character"
        assert vocabulary.source == str(char_dir / "tokenizer_config.json")
        assert vocabulary.tokens == tuple(character_vocab()) and not vocabulary.notes


def test_a_contradicting_subword_is_an_error(char_dir):
    with pytest.raises(ValueError, match="--subword wordpiece contradicts"):
        load_vocabulary(str(char_dir), "wordpiece")


def test_a_bare_vocab_txt_takes_the_flag_or_wordpiece():
    assert load_vocabulary(str(VOCAB), None).settings.subword == "wordpiece"
    assert load_vocabulary(str(VOCAB), "character").settings.subword == "character"
    assert load_vocabulary(str(VOCAB), None).source is None


def test_no_vocab_is_the_character_vocabulary_with_a_note():
    vocabulary = load_vocabulary(None, None)
    assert vocabulary.settings.subword == "character"
    assert "no --vocab" in vocabulary.notes[0]
    with pytest.raises(ValueError, match="--subword wordpiece needs --vocab"):
        load_vocabulary(None, "wordpiece")
