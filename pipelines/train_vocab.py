"""``bertjp train-vocab``: a WordPiece (or character) vocabulary from corpus text.

    ReadFiles(ReadLinesFn) ──Reshuffle──→ CountWords (NFKC, MeCab; sum per word)
      → TrainVocab (one worker: tokenizers' trainer on the counts) → DIR/vocab.txt,
        DIR/tokenizer_config.json                    + dead letters + manifest

MeCab runs on every worker; only the word counts meet on one worker, so the
trainer's memory is bounded by the number of distinct words, not by the corpus.
The training is deterministic (see :mod:`bertjp.vocab`).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import logging
import posixpath
import uuid
from typing import Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from bertjp.alphabet import alphabet_from_lex_csv, parse_alphabet, unidic_lite_alphabet
from bertjp.manifest import Summary, summarize
from bertjp.mecab import NUL, MecabDictionary
from bertjp.tokenization import JapaneseTokenizer
from bertjp.vocab import train_wordpiece
from bertjp.vocab_files import character_vocab, special_tokens, tokenizer_files
from pipelines import common, runner
from pipelines.io import ReadFileFn
from pipelines.options import add_common_arguments
from pipelines.stats import Tallied, TalliedParDo, TallyDoFn
from pipelines.transforms import ReadFiles

__all__ = ["TrainVocabConfig", "build", "run"]

LOW_COVERAGE = 0.95
"""An alphabet coverage of the corpus characters below this is a warning."""
_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainVocabConfig(common.JobConfig):
    """Configuration of ``bertjp train-vocab`` (see :class:`common.JobConfig`).

    Attributes:
      output: the tokenizer directory (local or ``gs://``).
      subword: ``wordpiece`` or ``character`` (special tokens + the alphabet).
      vocab_size: the WordPiece vocabulary size, special tokens included.
      num_unused: ``[unused0]``… tokens after the five special tokens.
      min_frequency: the least count of a merged pair.
      mecab_dict: the MeCab dictionary of the pre-tokenization.
      mecabrc: the ``mecabrc`` of a dictionary directory.
      alphabet: the vocabulary's characters; the unidic-lite alphabet by default.
    """

    subword: str = "wordpiece"
    vocab_size: int = 32768
    num_unused: int = 10
    min_frequency: int = 2
    mecab_dict: str = "unidic-lite"
    mecabrc: str | None = None
    alphabet: tuple[str, ...] = ()

    def __post_init__(self):
        super().__post_init__()
        if self.subword not in ("wordpiece", "character"):
            raise ValueError(f"--subword must be wordpiece or character, got {self.subword!r}")
        if not self.alphabet:
            object.__setattr__(self, "alphabet", tuple(unidic_lite_alphabet()))
        self.dictionary()  # fails now on a bad dictionary
        if self.vocab_size <= 5 + self.num_unused + len(self.alphabet):
            raise ValueError("--vocab-size must exceed the special tokens plus the alphabet")

    def dictionary(self) -> MecabDictionary:
        return MecabDictionary(self.mecab_dict, self.mecabrc)

    @property
    def dead_letter_path(self) -> str:
        return posixpath.join(self.output, "dead-letter.jsonl")

    @property
    def manifest_path(self) -> str:
        return posixpath.join(self.output, "manifest.json")

    @property
    def temp_prefix(self) -> str:
        return self.output + "/"


class ReadLinesFn(ReadFileFn):
    """Emits every non-empty, valid UTF-8 line of the corpus as text."""

    def read(self, path, lines):
        for item in self.text_lines(path, lines):
            yield item if isinstance(item, beam.pvalue.TaggedOutput) else item[2]


class CountWordsFn(TallyDoFn):
    """MeCab words of a line (NFKC, cased) with their counts; tallies alphabet coverage
    and the NUL characters (MeCab reads them as spaces, see :mod:`bertjp.mecab`)."""

    def __init__(self, config: TrainVocabConfig):
        super().__init__()
        self._config = config

    def setup(self):
        self._words = JapaneseTokenizer(character_vocab(), subword="character",
                                        dictionary=self._config.dictionary())
        self._alphabet = set(self._config.alphabet)

    def process(self, line):
        words = self._words.words(line.strip())
        self.count("lines_out")
        self.count("nul_characters", line.count(NUL))
        self.count("words", len(words))
        chars = sum(len(w) for w in words)
        self.count("characters", chars)
        self.count("characters_in_alphabet",
                   sum(ch in self._alphabet for w in words for ch in w))
        yield from collections.Counter(words).items()


def train_and_write(counts: dict, config: TrainVocabConfig):
    alphabet = list(config.alphabet)
    if config.subword == "character":
        vocab = character_vocab(alphabet, config.num_unused)
    else:
        vocab = train_wordpiece(counts, alphabet, config.vocab_size, config.num_unused,
                                config.min_frequency)
    files = tokenizer_files(vocab, config.subword, config.dictionary())
    for name, data in files.items():
        path = posixpath.join(config.output, name)
        temp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"  # renamed when complete
        with FileSystems.create(temp) as f:
            f.write(data)
        FileSystems.rename([temp], [path])
    yield ("output", {"path": posixpath.join(config.output, "vocab.txt"), "role": "vocab",
                      "records": len(vocab), "lines": len(vocab),
                      "bytes": len(files["vocab.txt"]),
                      "sha256": hashlib.sha256(files["vocab.txt"]).hexdigest(),
                      "distinct_words": len(counts),
                      "special_tokens": len(special_tokens(config.num_unused)),
                      "alphabet": len(alphabet)})


def _summarize(counts: dict, outputs: list) -> Summary:
    """Lines read (by the reader) against lines counted (by CountWords) plus dropped;
    alphabet coverage, NULs and the coverage warning."""
    coverage = counts.get("characters_in_alphabet", 0) / max(1, counts.get("characters", 0))
    warnings = [w for w in (_coverage_warning(coverage, counts.get("characters", 0)),) if w]
    for warning in warnings:
        _LOG.warning("%s", warning)
    return dataclasses.replace(
        summarize(counts, outputs, unit="lines", records_in="lines_in", records_out="lines_out"),
        alphabet_coverage=coverage, nul_characters=counts.get("nul_characters", 0),
        warnings=warnings)


def _coverage_warning(coverage: float, characters: int) -> str | None:
    """The warning for a low alphabet coverage: the vocabulary's analogue of [UNK]s."""
    if not characters or coverage >= LOW_COVERAGE:
        return None
    return (f"only {100 * coverage:.1f} % of the corpus's {characters:,} characters "
            f"are in the alphabet (under {100 * LOW_COVERAGE:g} %): the others never reach "
            "the vocabulary and tokenize as [UNK]; is the corpus Japanese text, and does "
            "--alphabet/--lex-csv fit it?")


class CountWords(beam.PTransform):
    """Corpus lines → ``(word, count)`` over the whole corpus (see :class:`CountWordsFn`).

    Args:
      config: the job's configuration (dictionary, alphabet).

    Returns:
      A :class:`pipelines.stats.Tallied`: one ``(word, count)`` per distinct word,
      the tallies (lines, words, characters, alphabet coverage, NULs), no dead letters.
    """

    def __init__(self, config: TrainVocabConfig):
        super().__init__()
        self._config = config

    def expand(self, lines) -> Tallied:
        words = lines | "Words" >> TalliedParDo(CountWordsFn(self._config))
        totals = words.main | "SumPerWord" >> beam.CombinePerKey(sum)
        return Tallied(totals, words.stats, words.dead)


class TrainVocab(beam.PTransform):
    """``(word, count)`` pairs → the tokenizer files, trained and written on one worker.

    Args:
      config: the job's configuration (subword type, sizes, output folder).

    Returns:
      The stats: one ``("output", {...})`` record of the written ``vocab.txt``.
    """

    def __init__(self, config: TrainVocabConfig):
        super().__init__()
        self._config = config

    def expand(self, counts):
        return (
            counts
            | "AllCounts" >> beam.combiners.ToDict()
            | "Train" >> beam.FlatMap(train_and_write, self._config)
        )


def build(pipeline: beam.Pipeline, config: TrainVocabConfig):
    """Adds the train-vocab job to ``pipeline``; returns the manifest PCollection."""
    reader = ReadLinesFn(config.max_line_bytes)
    lines = pipeline | "ReadLines" >> ReadFiles(config.inputs, reader)
    words = (
        lines.main
        | "SpreadLines" >> beam.Reshuffle()
        | "CountWords" >> CountWords(config)
    )
    vocab_stats = words.main | "TrainVocab" >> TrainVocab(config)
    described = dataclasses.asdict(config)
    described["alphabet"] = {
        "characters": len(config.alphabet),
        "sha256": hashlib.sha256("".join(config.alphabet).encode("utf-8")).hexdigest()}
    header = common.job_header("train-vocab", config, described, seed=None,
                               mecab_dictionary=config.dictionary().describe())
    return common.finish_job(config, header, [lines.stats, words.stats, vocab_stats],
                             [lines.dead, words.dead], _summarize)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertjp train-vocab", allow_abbrev=False,
        description="Train a WordPiece vocabulary (cl-tohoku v3 recipe: NFKC, MeCab "
        "pre-tokenization, the unidic-lite alphabet, ## continuations) deterministically from "
        "corpus text, or write the character vocabulary; writes DIR/vocab.txt and a "
        "tokenizer_config.json that transformers loads as BertJapaneseTokenizer.",
        epilog=common.EPILOG.split("Outputs:")[0]
        + "Outputs: DIR/vocab.txt, DIR/tokenizer_config.json, DIR/dead-letter.jsonl, "
        "DIR/manifest.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_input_argument(parser, "corpus text, one sentence per line (plain or .gz), "
                              "local or gs://, globs allowed")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="tokenizer directory, local or gs://")
    parser.add_argument("--subword", choices=("wordpiece", "character"), default="wordpiece",
                        help="a trained WordPiece vocabulary, or the character vocabulary "
                        "(special tokens + the alphabet) (default: wordpiece)")
    parser.add_argument("--vocab-size", type=int, default=32768, metavar="N",
                        help="WordPiece vocabulary size: the target of the merges; the alphabet "
                        "and the ## characters the words need are always in (default: 32768)")
    parser.add_argument("--num-unused", type=int, default=10, metavar="N",
                        help="[unusedN] tokens after the special tokens (default: 10)")
    parser.add_argument("--min-frequency", type=int, default=2, metavar="N",
                        help="least count of a merged pair (default: 2)")
    parser.add_argument("--mecab-dict", default="unidic-lite", metavar="DICT",
                        help="MeCab dictionary of the pre-tokenization: unidic-lite (default), "
                        "ipadic, or a dictionary directory (written into tokenizer_config.json "
                        "as -d/-r options; it must exist where the tokenizer is loaded)")
    parser.add_argument("--mecabrc", default=None, metavar="FILE",
                        help="mecabrc for a dictionary directory (default: the dictionary's "
                        "own)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--alphabet", metavar="FILE",
                        help="the vocabulary's characters, one per line (default: the 7,012 "
                        "unidic-lite characters of the released v3 vocabulary)")
    source.add_argument("--lex-csv", metavar="FILE",
                        help="build the alphabet from a UniDic lex.csv as "
                        "make_alphabet_from_unidic.py does")
    common.add_max_line_bytes_argument(parser)
    add_common_arguments(parser)
    return parser


def _read_alphabet(args) -> tuple[str, ...]:
    if args.lex_csv:
        return tuple(alphabet_from_lex_csv(args.lex_csv))
    if args.alphabet:
        with FileSystems.open(args.alphabet) as f:
            return tuple(parse_alphabet(f.read().decode("utf-8")))
    return ()


def config_from_args(args) -> TrainVocabConfig:
    return TrainVocabConfig(
        alphabet=_read_alphabet(args), mecabrc=args.mecabrc,
        inputs=tuple(args.input), output=common.resolve_output(args.output, "dir"),
        subword=args.subword,
        vocab_size=args.vocab_size, num_unused=args.num_unused,
        min_frequency=args.min_frequency, mecab_dict=args.mecab_dict,
        max_line_bytes=args.max_line_bytes)


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs ``bertjp train-vocab``; returns the manifest."""
    return runner.run_command(make_parser(), argv, config_from_args, build,
                              expected="is it corpus text (one sentence per line, UTF-8)?")
