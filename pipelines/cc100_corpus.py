"""``bertjp cc100-corpus``: CC-100 ``ja.txt.xz`` → document shards in the corpus format.

The reference's ``merge_split_corpora.py`` as a Beam job: each line is
whitespace-normalised (strip, every run of Unicode whitespace → one space), an
empty line ends a document, and documents are distributed over N balanced shards
by a seeded hash of their position in their file. CC-100 is not sentence-split
(the reference does none): its lines serve as sentences.

    MatchInputs → ReadCc100Documents → WriteShards   + dead letters + manifest

Unlike the reference, a document never continues from one input file into the
next, any N works, and the first document can land in any shard.
"""

from __future__ import annotations

import argparse
import dataclasses
import posixpath
from typing import Sequence

import apache_beam as beam

from bertjp.corpus import BadLine, format_document, group_cc100_documents
from bertjp.sharding import stable_key
from pipelines import common
from pipelines.io import MatchInputs, ReadFileFn
from pipelines.stats import DEAD, STATS, dead_letter

__all__ = ["Cc100CorpusConfig", "build", "run"]


@dataclasses.dataclass(frozen=True)
class Cc100CorpusConfig(common.CorpusConfig):
    """Configuration of ``bertjp cc100-corpus`` (see :class:`common.CorpusConfig`)."""

    num_shards: int = 64


class ReadCc100DocumentsFn(ReadFileFn):
    """Reads one CC-100 file; emits ``(key, document_bytes)``."""

    def __init__(self, config: Cc100CorpusConfig):
        super().__init__(config.max_line_bytes)
        self._seed = config.seed

    def read(self, path, lines):
        name = posixpath.basename(path)
        for item in group_cc100_documents(lines):
            if isinstance(item, BadLine):
                self.count(f"lines_dropped.{item.reason}")
                yield dead_letter(path, item.line, item.reason, item.detail, item.head)
                continue
            self.count("documents_in")
            self.count("documents_out")
            self.count("sentences.kept", len(item.lines))
            key = stable_key(self._seed, f"cc100:{name}:{item.ordinal}")
            yield key, format_document(item.lines).encode("utf-8")


def build(pipeline: beam.Pipeline, config: Cc100CorpusConfig):
    """Adds the cc100-corpus job to ``pipeline``; returns the manifest PCollection."""
    read = (
        pipeline
        | "MatchInputs" >> MatchInputs(config.inputs)
        | "ReadDocuments" >> beam.ParDo(ReadCc100DocumentsFn(config))
        .with_outputs(STATS, DEAD, main="docs")
    )
    return common.write_outputs(config, "cc100-corpus", read["docs"],
                                stats=[read[STATS]], dead=[read[DEAD]])


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # an abbreviation could shadow a Beam option
        prog="bertjp cc100-corpus",
        description="Turn CC-100 text (ja.txt.xz; also .gz or plain: one paragraph per line, "
        "an empty line after each document) into document shards in the corpus format, "
        "normalising whitespace as cl-tohoku/bert-japanese merge_split_corpora.py does.",
        epilog=common.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common.add_corpus_arguments(parser, default_shards=64, default_stem="corpus")
    return parser


def config_from_args(args) -> Cc100CorpusConfig:
    return Cc100CorpusConfig(**common.corpus_config_kwargs(args, default_stem="corpus"))


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs ``bertjp cc100-corpus``; returns the manifest."""
    return common.run_command(make_parser(), argv, config_from_args, build)
