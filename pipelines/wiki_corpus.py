"""``bertjp wiki-corpus``: a Wikipedia Cirrussearch dump → sentence-per-line corpus shards.

The reference's ``make_corpus_wiki.py`` + ``merge_split_corpora.py`` as one Beam job:

    ReadFiles(ReadPagesFn: JSON) ──Reshuffle──→ SplitPages (clean, MeCab split, filter)
      → WriteShards (N balanced, seeded files)     + dead letters + manifest

A dump is one gzip file that Beam cannot split, so it is read once, line by
line; only the pages' id, title and text are reshuffled, so that cleaning and
MeCab run on every worker. The output format, cleaning and sentence splitting are the reference's
exactly (see README, "Wikipedia corpus").
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Sequence

import apache_beam as beam

from bertjp import cirrus
from bertjp.corpus import format_document
from bertjp.mecab import MecabDictionary
from bertjp.sentences import SentenceFilter, SentenceSplitter
from bertjp.sharding import position_key, stable_key
from bertjp.streams import LineTooLong
from bertjp.text import clean_wiki_text
from pipelines import common, runner
from pipelines.io import ReadFileFn, expand_inputs
from pipelines.stats import TalliedParDo, TallyDoFn, dead_letter
from pipelines.transforms import ReadFiles

__all__ = ["WikiCorpusConfig", "build", "run"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class WikiCorpusConfig(common.CorpusConfig):
    """Configuration of ``bertjp wiki-corpus`` (see ``--help`` for each field).

    Attributes:
      min_sentence_length: shortest kept sentence in code points.
      max_sentence_length: longest kept sentence in code points.
      mecab_dict: ``unidic-lite``, ``ipadic`` or a dictionary directory.
      mecabrc: the ``mecabrc`` for a dictionary directory.
      reference_order: key documents by input position instead of a seeded hash,
        so shards hold contiguous runs of pages in dump order.
    """

    min_sentence_length: int = 10
    max_sentence_length: int = 200
    mecab_dict: str = "unidic-lite"
    mecabrc: str | None = None
    reference_order: bool = False

    def dictionary(self) -> MecabDictionary:
        return MecabDictionary(self.mecab_dict, self.mecabrc)


class ReadPagesFn(ReadFileFn):
    """Reads a dump; emits ``(path, line_number, doc_id, title, text)`` per page.

    Action lines and the page fields we do not use (``source_text``,
    ``auxiliary_text``, ...) stay here, so only documents are reshuffled. Bad
    records go to the dead letters.
    """

    def read(self, path, lines):
        for lineno, raw in lines:
            if isinstance(raw, LineTooLong):
                self.count("documents_in")
                self.count("dropped.line_too_long")
                yield dead_letter(path, lineno, "line_too_long",
                                  f"{raw.size} bytes, above --max-line-bytes", raw.head)
                continue
            if not raw.strip():
                self.count("blank_lines")
                continue
            try:
                page = cirrus.parse_line(raw)
            except cirrus.BadRecord as bad:
                self.count("documents_in")
                self.count(f"dropped.{bad.reason}")
                yield dead_letter(path, lineno, bad.reason, bad.detail, raw)
                continue
            if page is cirrus.ACTION:
                self.count("action_lines")
                continue
            self.count("documents_in")
            yield path, lineno, page.doc_id, page.title, page.text


class SplitPagesFn(TallyDoFn):
    """Cleans and sentence-splits pages; emits ``(key, document_bytes)``."""

    def __init__(self, config: WikiCorpusConfig, input_index: dict[str, int] | None = None):
        super().__init__()
        self._config = config
        self._input_index = input_index

    def setup(self):
        self._splitter = SentenceSplitter(self._config.dictionary())
        self._splitter.split("MeCabを準備する。")  # build the tagger now, not mid-bundle
        self._filter = SentenceFilter(self._config.min_sentence_length,
                                      self._config.max_sentence_length)

    def process(self, element):
        path, lineno, doc_id, title, text = element
        text = clean_wiki_text(text, title)
        if not text:
            self.count("dropped.empty_text")
            return
        kept, filtered = self._filter(self._splitter.split(text))
        for reason, n in filtered.items():
            self.count(f"sentences.filtered.{reason}", n)
        if not kept:
            self.count("dropped.no_sentences_kept")
            return
        self.count("sentences.kept", len(kept))
        self.count("documents_out")
        if self._input_index is None:
            key = stable_key(self._config.seed, f"wiki:{doc_id}")
        else:
            key = position_key(self._input_index[path], lineno)
        yield key, format_document(kept).encode("utf-8")


def _input_index(config: WikiCorpusConfig) -> dict[str, int] | None:
    """With ``reference_order``, each input file's position (keys follow the dump order)."""
    if not config.reference_order:
        return None
    return {path: i for i, path in enumerate(expand_inputs(config.inputs))}


def build(pipeline: beam.Pipeline, config: WikiCorpusConfig):
    """Adds the wiki-corpus job to ``pipeline``; returns the manifest PCollection."""
    reader = ReadPagesFn(config.max_line_bytes)
    pages = pipeline | "ReadPages" >> ReadFiles(config.inputs, reader)
    docs = (
        pages.main
        | "SpreadPages" >> beam.Reshuffle()
        | "SplitPages" >> TalliedParDo(SplitPagesFn(config, _input_index(config)))
    )
    return common.write_outputs(
        config, "wiki-corpus", docs.main,
        stats=[pages.stats, docs.stats],
        dead=[pages.dead, docs.dead],
        extra_header={"mecab_dictionary": config.dictionary().describe()},
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_corpus_arguments(parser, default_shards=8, default_stem="corpus")
    group = parser.add_argument_group("cleaning and sentence splitting")
    group.add_argument("--min-sentence-length", type=int, default=10, metavar="N",
                       help="drop sentences shorter than N code points (default: 10)")
    group.add_argument("--max-sentence-length", type=int, default=200, metavar="N",
                       help="drop sentences longer than N code points (default: 200, the "
                       "reference README's value; the script's own default is 1000)")
    group.add_argument("--mecab-dict", default="unidic-lite", metavar="DICT",
                       help="MeCab dictionary for sentence splitting: unidic-lite (default), "
                       "ipadic, or a compiled dictionary directory (must exist on every worker)")
    group.add_argument("--mecabrc", default=None, metavar="FILE",
                       help="mecabrc for a dictionary directory (default: the dictionary's own)")
    parser.add_argument("--reference-order", action="store_true",
                        help="keep the dump's page order instead of a seeded shuffle: shards "
                        "hold contiguous runs of pages; with --num-shards 1 the output is "
                        "make_corpus_wiki.py's file byte for byte (inputs are read in the "
                        "order given, globs sorted; up to 16 files)")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # an abbreviation could shadow a Beam option
        prog="bertjp wiki-corpus",
        description="Turn Wikipedia Cirrussearch content dumps into sentence-per-line corpus "
        "shards (one sentence per line, an empty line after each document), cleaned and "
        "split exactly as cl-tohoku/bert-japanese make_corpus_wiki.py does.",
        epilog=common.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def config_from_args(args) -> WikiCorpusConfig:
    return WikiCorpusConfig(
        **common.corpus_config_kwargs(args, default_stem="corpus"),
        min_sentence_length=args.min_sentence_length,
        max_sentence_length=args.max_sentence_length,
        mecab_dict=args.mecab_dict,
        mecabrc=args.mecabrc,
        reference_order=args.reference_order,
    )


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs ``bertjp wiki-corpus``; returns the manifest."""
    return runner.run_command(make_parser(), argv, config_from_args, build,
                              expected="is it a Cirrussearch content dump (one JSON page per "
                              "line, e.g. jawiki-YYYYMMDD-cirrussearch-content.json.gz)?")

