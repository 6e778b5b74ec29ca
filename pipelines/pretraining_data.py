"""``bertjp pretraining-data``: corpus shards → masked-LM + NSP instances as gzip TFRecords.

    MatchInputs → ReadDocuments → Tokenize (MeCab + WordPiece/character)
      → for each dupe pass: a seeded bucket per document → GroupByKey(pass, bucket)
      → CreateInstances (the reference's algorithm; the random next segment comes from
        another document of the same bucket) → WriteShards(.tfrecord.gz)  + manifest

Every document's random stream is seeded from ``--seed``, the document's
stable key (file name and position) and the dupe pass, and each bucket is a
seeded random sample of ``--bucket-documents`` documents of the whole corpus, so
the records do not depend on the runner or the worker count, and no worker holds
more than one bucket.

The tokenizer's settings (subword type, lowercasing, MeCab dictionary) come from the
tokenizer directory's ``tokenizer_config.json`` when there is one (flags may add what
it does not state; a flag that contradicts it is an error). The job counts the
tokens, the ``[UNK]`` tokens (a rate above 5 % is a warning: the vocabulary and the
subword type likely do not match), the NUL characters (read as spaces, see
:mod:`bertjp.mecab`) and the tokens truncation drops.
"""

from __future__ import annotations

import argparse
import array
import dataclasses
import hashlib
import logging
import math
import posixpath
from typing import Sequence

import apache_beam as beam

from bertjp.instances import InstanceConfig, Specials, bucket_instances
from bertjp.mecab import NUL, MecabDictionary
from bertjp.records import InstanceEncoder
from bertjp.sharding import stable_key
from bertjp.streams import LineTooLong
from bertjp.tokenization import JapaneseTokenizer
from bertjp.vocab_files import (TOKENIZER_CONFIG, TokenizerSettings, read_tokenizer_config,
                                resolve_settings)
from pipelines import common
from pipelines.io import MatchInputs, ReadFileFn, WriteShards, shard_path
from pipelines.options import add_common_arguments
from pipelines.stats import DEAD, STATS, TallyDoFn, dead_letter

__all__ = ["PretrainingDataConfig", "build", "run"]

MAX_SEQ_LENGTH = 512
"""BERT's position embeddings (``training.configs.MAX_POSITION_EMBEDDINGS``): train refuses
longer sequences."""
UNK_WARNING_RATE = 0.05
"""A share of ``[UNK]`` tokens above this is a warning."""
_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PretrainingDataConfig(common.JobConfig):
    """Configuration of ``bertjp pretraining-data`` (reference flag names and defaults).

    Attributes:
      vocab: the tokens of the vocabulary, in id order.
      subword: ``wordpiece`` or ``character``.
      do_lower_case: lowercase as the reference (default false: the vocabulary is cased).
      mecab_dict: the MeCab dictionary: ``unidic-lite``, ``ipadic`` or a directory.
      mecabrc: the ``mecabrc`` of a dictionary directory.
      tokenizer_config: the ``tokenizer_config.json`` the settings came from, if any.
      instance: lengths and probabilities.
      dupe_factor: passes over the corpus, each with other masks.
      num_shards: output files.
      bucket_documents: documents per random-next bucket.
      v2_feature_names: Model Garden's v2 names (``input_word_ids``...).
    """

    vocab: tuple[str, ...]
    subword: str = "wordpiece"
    do_lower_case: bool = False
    mecab_dict: str = "unidic-lite"
    mecabrc: str | None = None
    tokenizer_config: str | None = None
    instance: InstanceConfig = InstanceConfig()
    dupe_factor: int = 10
    num_shards: int = 8
    bucket_documents: int = 256
    v2_feature_names: bool = True

    def __post_init__(self):
        super().__post_init__()
        for flag, value, least in (("--dupe-factor", self.dupe_factor, 1),
                                   ("--num-shards", self.num_shards, 1),
                                   ("--bucket-documents", self.bucket_documents, 2)):
            if value < least:
                raise ValueError(f"{flag} must be at least {least}, got {value}")
        if self.instance.max_seq_length > MAX_SEQ_LENGTH:
            raise ValueError(f"--max-seq-length must be at most {MAX_SEQ_LENGTH} (BERT's "
                             f"position embeddings), got {self.instance.max_seq_length}")
        self.dictionary()  # fails now on a bad dictionary

    def dictionary(self) -> MecabDictionary:
        """The MeCab dictionary the tokenizer uses."""
        return MecabDictionary(self.mecab_dict, self.mecabrc)

    @property
    def shard_paths(self) -> list[str]:
        return [shard_path(self.output, i, self.num_shards, ".tfrecord.gz")
                for i in range(self.num_shards)]

    def tokenizer(self) -> JapaneseTokenizer:
        return JapaneseTokenizer(list(self.vocab), subword=self.subword,
                                 do_lower_case=self.do_lower_case,
                                 dictionary=self.dictionary())


class ReadDocumentsFn(ReadFileFn):
    """Corpus-format file → ``(document_key, [line, ...])``."""

    def read(self, path, lines):
        name = posixpath.basename(path)
        doc: list[str] = []
        ordinal = 0
        for lineno, raw in lines:
            if isinstance(raw, LineTooLong):
                self.count("lines_dropped.line_too_long")
                yield dead_letter(path, lineno, "line_too_long", f"{raw.size} bytes", raw.head)
                continue
            text = raw.decode("utf-8", "ignore")  # as the reference reads its input
            if len(text.encode("utf-8")) != len(raw):
                self.count("lines_with_invalid_utf8")
                yield dead_letter(path, lineno, "invalid_utf8_bytes_dropped",
                                  "invalid bytes removed, as the reference does", raw)
            text = text.strip()
            if text:
                doc.append(text)
            elif doc:
                self.count("documents_in")
                yield f"{name}:{ordinal}", doc
                ordinal, doc = ordinal + 1, []
        if doc:
            self.count("documents_in")
            yield f"{name}:{ordinal}", doc


class _TokenizerDoFn(TallyDoFn):
    """A DoFn holding the job's config and, from ``setup``, its tokenizer."""

    def __init__(self, config: PretrainingDataConfig):
        super().__init__()
        self._config = config

    def setup(self):
        self._tokenizer = self._config.tokenizer()


def _code_type(config: PretrainingDataConfig) -> str:
    """The array type that holds a token code (``id << 1 | continuation``)."""
    return "H" if len(config.vocab) <= 1 << 15 else "I"


class TokenizeFn(_TokenizerDoFn):
    """``(key, lines)`` → ``(key, [token codes of each non-empty sentence, as bytes])``.

    Codes travel as packed arrays: through the shuffle, a sentence is one ``bytes``.
    Counts the tokens, the ``[UNK]`` tokens and the NUL characters (MeCab reads them
    as spaces)."""

    def process(self, element):
        key, lines = element
        code_type, unk = _code_type(self._config), self._tokenizer.unk_code
        sentences = []
        tokens = unknown = 0
        for codes in map(self._tokenizer.token_codes, lines):
            if codes:
                tokens += len(codes)
                unknown += codes.count(unk)
                sentences.append(array.array(code_type, codes).tobytes())
        self.count("nul_characters", sum(line.count(NUL) for line in lines))
        self.count("tokens", tokens)
        self.count("unk_tokens", unknown)
        if not sentences:
            self.count("dropped.no_tokens")
            return
        self.count("sentences", len(sentences))
        yield key, sentences


class CreateInstancesFn(TallyDoFn):
    """One bucket of one dupe pass → framed TFRecords keyed for the shard writer."""

    def __init__(self, config: PretrainingDataConfig):
        super().__init__()
        self._config = config

    def setup(self):
        config = self._config
        self._code_type = _code_type(config)
        self._specials = Specials.from_vocab(config.vocab)
        self._encoder = InstanceEncoder(config.instance.max_seq_length,
                                        config.instance.max_predictions_per_seq,
                                        config.v2_feature_names)

    def process(self, element):
        (dupe, _), members = element
        config, encode = self._config, self._encoder.encode
        batch = []  # one bucket's records: one element for the shard writer
        masked = random_next = truncated = 0
        for key, inst in bucket_instances(members, dupe, config.seed, config.instance,
                                          self._specials, self._code_type):
            num_masked = len(inst.masked_lm_positions)
            batch.append((key, encode(inst.input_ids, inst.a_length, inst.masked_lm_positions,
                                      inst.masked_lm_ids, inst.is_random_next), num_masked))
            masked += num_masked
            random_next += inst.is_random_next
            truncated += inst.tokens_truncated
        self.count("instances", len(batch))
        self.count("masked_tokens", masked)
        self.count("random_next", random_next)
        self.count("tokens_truncated", truncated)
        if batch:
            yield batch


def _assign_buckets(element, num_docs, config):
    key, sentences = element
    buckets = max(1, math.ceil(num_docs / config.bucket_documents))
    for dupe in range(config.dupe_factor):
        yield (dupe, stable_key(config.seed, f"bucket:{key}:{dupe}") % buckets), (key, sentences)


def _unk_warning(unk_tokens: int, tokens: int) -> str | None:
    """The warning for a share of ``[UNK]`` tokens above :data:`UNK_WARNING_RATE`."""
    rate = unk_tokens / max(1, tokens)
    if rate <= UNK_WARNING_RATE:
        return None
    return (f"{100 * rate:.1f} % of the {tokens:,} tokens are [UNK] (above "
            f"{100 * UNK_WARNING_RATE:g} %): the vocabulary and the subword type likely do "
            "not match (a character vocabulary needs --subword character; pass the tokenizer "
            "directory so that its tokenizer_config.json sets it)")


def _summarize(merged: dict) -> dict:
    summary = common.summarize_counts(merged)["summary"]
    counts = merged["counts"]
    summary["documents"]["out"] = summary["documents"]["in"] - sum(
        summary["documents"]["dropped"].values())
    summary["accounted"] = True
    summary["unit"] = "documents"
    summary["instances"] = counts.get("instances", 0)
    summary["masked_tokens"] = counts.get("masked_tokens", 0)
    summary["random_next"] = counts.get("random_next", 0)
    tokens, unk = counts.get("tokens", 0), counts.get("unk_tokens", 0)
    summary["tokens"], summary["unk_tokens"] = tokens, unk
    summary["unk_rate"] = unk / max(1, tokens)
    summary["nul_characters"] = counts.get("nul_characters", 0)
    summary["tokens_truncated"] = counts.get("tokens_truncated", 0)
    summary["warnings"] = [w for w in (_unk_warning(unk, tokens),) if w]
    for warning in summary["warnings"]:
        _LOG.warning("%s", warning)
    masked = {o["path"]: o.get("masked_tokens", 0) for o in merged["outputs"]
              if o.get("role") == "shard"}
    for shard in summary["shards"]:
        shard["instances"] = shard.pop("documents")
        shard["masked_tokens"] = masked[shard["path"]]
        shard.pop("sentences")
    return {"summary": summary}


def build(pipeline: beam.Pipeline, config: PretrainingDataConfig):
    """Adds the pretraining-data job to ``pipeline``; returns the manifest PCollection."""
    read = (
        pipeline
        | "MatchInputs" >> MatchInputs(config.inputs)
        | "ReadDocuments" >> beam.ParDo(ReadDocumentsFn(config.max_line_bytes))
        .with_outputs(STATS, DEAD, main="docs")
    )
    tokenized = (
        read["docs"]
        | "SpreadDocuments" >> beam.Reshuffle()
        | "Tokenize" >> beam.ParDo(TokenizeFn(config)).with_outputs(STATS, main="docs")
    )
    docs = tokenized["docs"]
    num_docs = beam.pvalue.AsSingleton(docs | "CountDocuments" >> beam.combiners.Count.Globally())
    created = (
        docs
        | "AssignBuckets" >> beam.FlatMap(_assign_buckets, num_docs, config)
        | "GroupBuckets" >> beam.GroupByKey()
        | "CreateInstances" >> beam.ParDo(CreateInstancesFn(config))
        .with_outputs(STATS, main="records")
    )
    written = created["records"] | "WriteShards" >> WriteShards(
        config.shard_paths, compress=True, chunk_bytes=config.chunk_bytes, batched=True,
        count_name="masked_tokens")
    described = dataclasses.asdict(config)
    described.pop("vocab")
    vocab_bytes = "".join(t + "\n" for t in config.vocab).encode("utf-8")
    header = common.job_header("pretraining-data", config, described,
                               vocab_size=len(config.vocab),
                               vocab_sha256=hashlib.sha256(vocab_bytes).hexdigest(),
                               mecab_dictionary=config.dictionary().describe())
    return common.finish_job(config, header,
                             [read[STATS], tokenized[STATS], created[STATS], written],
                             [read[DEAD]], _summarize)


def _add_tokenizer_arguments(parser: argparse.ArgumentParser) -> None:
    """``--vocab`` and the tokenizer settings a tokenizer directory may state."""
    group = parser.add_argument_group(
        "vocabulary and tokenizer",
        "A tokenizer directory's tokenizer_config.json (bertjp train-vocab writes one) sets\n"
        "--subword, --do-lower-case and --mecab-dict: a flag may add what it does not state,\n"
        "a flag that contradicts it is an error. With a vocab.txt that has no\n"
        "tokenizer_config.json beside it, the flags and their defaults apply.")
    group.add_argument("--vocab", required=True, metavar="DIR_OR_FILE",
                       help="a tokenizer directory or its vocab.txt, local or gs://")
    group.add_argument("--subword", choices=("wordpiece", "character"), default=None,
                       help="subword tokenizer (default: the tokenizer directory's "
                       "subword_tokenizer_type, else wordpiece)")
    group.add_argument("--do-lower-case", action=argparse.BooleanOptionalAction, default=None,
                       help="lowercase as the reference's default does (default: the tokenizer "
                       "directory's do_lower_case, else off: the vocabulary is cased; see "
                       "README, the lowercasing trap)")
    group.add_argument("--mecab-dict", default=None, metavar="DICT",
                       help="MeCab dictionary: unidic-lite, ipadic or a dictionary directory "
                       "(default: the tokenizer directory's mecab_kwargs, else unidic-lite)")
    group.add_argument("--mecabrc", default=None, metavar="FILE",
                       help="mecabrc for a dictionary directory (default: the tokenizer "
                       "directory's -r, else the dictionary's own)")


def _add_instance_arguments(parser: argparse.ArgumentParser) -> None:
    """The reference's instance flags, with its names and defaults."""
    group = parser.add_argument_group("instances (the reference's flags and defaults)")
    group.add_argument("--max-seq-length", type=int, default=128, metavar="N",
                       help="tokens per instance, [CLS] and [SEP] included; at most "
                       f"{MAX_SEQ_LENGTH}, BERT's position embeddings (default: 128)")
    group.add_argument("--max-predictions-per-seq", type=int, default=20, metavar="N",
                       help="most masked tokens per instance; at most --max-seq-length - 3 "
                       "(default: 20; the recipe uses 19 at 128, 76 at 512)")
    group.add_argument("--masked-lm-prob", type=float, default=0.15, metavar="P",
                       help="share of the tokens to mask (default: 0.15)")
    group.add_argument("--short-seq-prob", type=float, default=0.1, metavar="P",
                       help="how often a document pass uses a shorter random target length "
                       "(default: 0.1)")
    group.add_argument("--dupe-factor", type=int, default=10, metavar="N",
                       help="passes over the corpus, each with other masks (default: 10)")
    group.add_argument("--seed", "--random-seed", dest="seed", type=int, default=12345,
                       metavar="N", help="seed of every random draw and of the record order "
                       "(--random-seed: the reference's name; default: 12345)")
    group.add_argument("--no-whole-word-mask", dest="do_whole_word_mask",
                       action="store_false", help="mask tokens, not whole MeCab words "
                       "(default: whole-word masking)")
    group.add_argument("--reference-shuffle", action="store_true",
                       help="order the mask candidates with the reference's full rng.shuffle "
                       "(default: the same uniform order, drawn lazily: ~5x fewer draws)")
    group.add_argument("--bucket-documents", type=int, default=256, metavar="N",
                       help="documents per random-next bucket (default: 256)")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertjp pretraining-data", allow_abbrev=False,
        description="Create whole-word-masked MLM + NSP instances from corpus shards as gzip "
        "TFRecords with Model Garden's feature names.",
        epilog=common.EPILOG.split("Outputs:")[0]
        + "Outputs: PREFIX-SSSSS-of-NNNNN.tfrecord.gz, PREFIX.dead-letter.jsonl, "
        "PREFIX.manifest.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    io = parser.add_argument_group("input and output")
    common.add_input_argument(io, "corpus files (one sentence per line, an empty line between "
                              "documents), local or gs://, plain or .gz, globs allowed")
    io.add_argument("--output", required=True, metavar="PREFIX",
                    help="output prefix, local or gs:// (a trailing / means PREFIX/pretraining)")
    io.add_argument("--num-shards", type=int, default=8, metavar="N",
                    help="output files, balanced by bytes (default: 8)")
    io.add_argument("--v1-feature-names", action="store_true",
                    help="input_ids/segment_ids instead of input_word_ids/input_type_ids "
                    "(default: Model Garden's v2 names)")
    io.add_argument("--max-line-bytes", type=int, default=64 << 20, metavar="N",
                    help="input lines longer than this go to the dead letters without being "
                    "read into memory (default: 64 MiB)")
    _add_tokenizer_arguments(parser)
    _add_instance_arguments(parser)
    add_common_arguments(parser)
    return parser


def _vocab_path(path: str) -> str:
    """``--vocab``'s ``vocab.txt``: the path itself, or ``DIR/vocab.txt``."""
    return path if path.endswith(".txt") else posixpath.join(path, "vocab.txt")


def _read_text(path: str) -> str:
    """A UTF-8 file, local or ``gs://``."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        return f.read().decode("utf-8")


def _tokenizer_settings(args, vocab_path: str) -> tuple[TokenizerSettings, str | None]:
    """The settings to tokenize with and the ``tokenizer_config.json`` they came from."""
    from apache_beam.io.filesystems import FileSystems

    flags = TokenizerSettings(subword=args.subword, do_lower_case=args.do_lower_case,
                              mecab_dict=args.mecab_dict, mecabrc=args.mecabrc)
    source = posixpath.join(posixpath.dirname(vocab_path), TOKENIZER_CONFIG)
    if not FileSystems.exists(source):
        return resolve_settings(None, flags), None
    stated = read_tokenizer_config(_read_text(source), source)
    return resolve_settings(stated, flags, source), source


def config_from_args(args) -> PretrainingDataConfig:
    from apache_beam.io.filesystems import FileSystems

    path = _vocab_path(args.vocab)
    if not FileSystems.exists(path):
        raise ValueError(f"--vocab {args.vocab}: {path} does not exist")
    text = _read_text(path)
    vocab = tuple(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"))
    settings, source = _tokenizer_settings(args, path)
    return PretrainingDataConfig(
        inputs=tuple(args.input), seed=args.seed, vocab=vocab,
        output=common.resolve_output(args.output, "prefix", "pretraining"),
        subword=settings.subword, do_lower_case=settings.do_lower_case,
        mecab_dict=settings.mecab_dict, mecabrc=settings.mecabrc, tokenizer_config=source,
        instance=InstanceConfig(max_seq_length=args.max_seq_length,
                                max_predictions_per_seq=args.max_predictions_per_seq,
                                masked_lm_prob=args.masked_lm_prob,
                                short_seq_prob=args.short_seq_prob,
                                do_whole_word_mask=args.do_whole_word_mask,
                                reference_shuffle=args.reference_shuffle),
        dupe_factor=args.dupe_factor, num_shards=args.num_shards,
        bucket_documents=args.bucket_documents, v2_feature_names=not args.v1_feature_names,
        max_line_bytes=args.max_line_bytes)


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs ``bertjp pretraining-data``; returns the manifest."""
    return common.run_command(
        make_parser(), argv, config_from_args, build,
        expected="is it a corpus (UTF-8 text, one sentence per line, an empty line after each "
        "document, as the corpus commands write)?")

