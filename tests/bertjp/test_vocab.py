import collections
import gzip
import subprocess
import sys

import pytest

from bertjp.alphabet import unidic_lite_alphabet
from bertjp.tokenization import JapaneseTokenizer, load_vocab
from bertjp.vocab import train_wordpiece
from bertjp.vocab_files import character_vocab
from tests.conftest import REFERENCE

CORPUS = REFERENCE / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz"
RELEASED = REFERENCE / "vocab" / "wordpiece_unidic_lite" / "vocab.txt"


@pytest.fixture(scope="module")
def word_counts():
    tok = JapaneseTokenizer(character_vocab(), subword="character")
    counts = collections.Counter()
    for line in gzip.open(CORPUS, "rt", encoding="utf-8"):
        counts.update(tok.words(line.strip()))
    return counts


@pytest.fixture(scope="module")
def vocab(word_counts):
    return train_wordpiece(word_counts, unidic_lite_alphabet(), vocab_size=12000)


def test_layout_matches_the_reference(vocab):
    assert len(vocab) == 12000 and len(set(vocab)) == 12000
    assert vocab[:7027] == load_vocab(RELEASED)[:7027]  # specials + alphabet: the char vocab
    continuation = [t for t in vocab[7027:] if t.startswith("##") and len(t) == 3]
    assert vocab[7027:7027 + len(continuation)] == sorted(continuation)


def test_merged_tokens_are_mostly_in_the_released_vocabulary(vocab):
    released = set(load_vocab(RELEASED))
    merged = [t for t in vocab[7027:] if len(t.removeprefix("##")) > 1]
    assert len(merged) > 2000
    assert sum(t in released for t in merged) / len(merged) > 0.8


def test_training_is_deterministic_across_processes(tmp_path, vocab):
    script = (
        "import collections, gzip, sys\n"
        "from bertjp.alphabet import unidic_lite_alphabet\n"
        "from bertjp.tokenization import JapaneseTokenizer\n"
        "from bertjp.vocab import train_wordpiece\n"
        "from bertjp.vocab_files import character_vocab\n"
        "tok = JapaneseTokenizer(character_vocab(), subword='character')\n"
        "counts = collections.Counter()\n"
        f"for line in gzip.open({str(CORPUS)!r}, 'rt', encoding='utf-8'):\n"
        "    counts.update(tok.words(line.strip()))\n"
        "vocab = train_wordpiece(counts, unidic_lite_alphabet(), vocab_size=12000)\n"
        "sys.stdout.write(''.join(t + '\\n' for t in vocab))\n"
    )
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] == "".join(t + "\n" for t in vocab)


def test_characters_outside_the_alphabet_never_enter(word_counts):
    counts = dict(word_counts)
    counts["café𠮷"] = 50
    vocab = train_wordpiece(counts, unidic_lite_alphabet(), vocab_size=9000)
    assert not any(ch in t for t in vocab for ch in "é𠮷")
