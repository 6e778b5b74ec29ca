"""Shared fixtures: paths of the real test data and helpers to run and read jobs."""

from __future__ import annotations

import collections
import gzip
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = pathlib.Path(__file__).parent / "fixtures"
WIKI_DUMP = FIXTURES / "jawiki-20211101-cirrussearch-content.json.gz"
CC100 = FIXTURES / "ja.txt.xz"
REFERENCE = FIXTURES / "reference"


def read_text(path) -> str:
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="\n") as f:
        return f.read()


def documents_of(text: str) -> list[tuple[str, ...]]:
    """Documents of a corpus-format text, each a tuple of sentences."""
    return [tuple(block.split("\n")) for block in text.split("\n\n") if block.strip()]


def shard_documents(manifest: dict) -> list[list[tuple[str, ...]]]:
    """The documents of each shard listed in a manifest, in shard order."""
    shards = sorted((o for o in manifest["outputs"] if o["role"] == "shard"),
                    key=lambda o: o["shard"])
    return [documents_of(read_text(o["path"])) for o in shards]


def multiset(docs) -> collections.Counter:
    return collections.Counter(docs)


@pytest.fixture(scope="session")
def reference_wiki_docs():
    return {
        dic: documents_of(read_text(REFERENCE / "make_corpus_wiki" / f"corpus.{dic}.txt.gz"))
        for dic in ("unidic_lite", "ipadic")
    }
