"""Fixtures the training tests share."""

import pytest

from pipelines import pretraining_data
from tests.conftest import REFERENCE

CORPUS = REFERENCE / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz"
VOCAB_DIR = REFERENCE / "vocab" / "wordpiece_unidic_lite"


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Prefix of two small real shards (and their manifest): seq 128, 20 predictions."""
    prefix = tmp_path_factory.mktemp("ptd") / "data"
    pretraining_data.run(["--input", str(CORPUS), "--vocab", str(VOCAB_DIR),
                          "--output", str(prefix), "--num-shards", "2", "--dupe-factor", "1",
                          "--max-seq-length", "128", "--max-predictions-per-seq", "20"])
    return prefix
