"""``bertjp pretraining-data``: corpus shards → masked-LM + NSP instances as gzip TFRecords.

    MatchInputs → ReadDocuments → Tokenize (MeCab + WordPiece/character)
      → for each dupe pass: a seeded bucket per document → GroupByKey(pass, bucket)
      → CreateInstances (the reference's algorithm; the random next segment comes from
        another document of the same bucket) → WriteShards(.tfrecord.gz)  + manifest

Every document's random stream is seeded from ``--random-seed``, the document's
stable key (file name and position) and the dupe pass, and each bucket is a
seeded random sample of ``--bucket-documents`` documents of the whole corpus, so
the records do not depend on the runner or the worker count, and no worker holds
more than one bucket.
"""

from __future__ import annotations

import argparse
import array
import dataclasses
import hashlib
import math
import posixpath
from typing import Sequence

import apache_beam as beam

from bertjp.instances import InstanceConfig, Specials, bucket_instances
from bertjp.records import InstanceEncoder
from bertjp.sharding import stable_key
from bertjp.streams import LineTooLong
from bertjp.tokenization import JapaneseTokenizer
from pipelines import common
from pipelines.io import MatchInputs, ReadFileFn, WriteShards, shard_path
from pipelines.options import add_common_arguments
from pipelines.stats import DEAD, STATS, TallyDoFn, dead_letter

__all__ = ["PretrainingDataConfig", "build", "run"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PretrainingDataConfig(common.JobConfig):
    """Configuration of ``bertjp pretraining-data`` (reference flag names and defaults).

    Attributes:
      vocab: the tokens of the vocabulary, in id order.
      subword: ``wordpiece`` or ``character``.
      do_lower_case: lowercase as the reference (default false: the vocabulary is cased).
      instance: lengths and probabilities.
      dupe_factor: passes over the corpus, each with other masks.
      num_shards: output files.
      bucket_documents: documents per random-next bucket.
      v2_feature_names: Model Garden's v2 names (``input_word_ids``...).
    """

    vocab: tuple[str, ...]
    subword: str = "wordpiece"
    do_lower_case: bool = False
    instance: InstanceConfig = InstanceConfig()
    dupe_factor: int = 10
    num_shards: int = 8
    bucket_documents: int = 256
    v2_feature_names: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.dupe_factor < 1 or self.num_shards < 1 or self.bucket_documents < 2:
            raise ValueError("--dupe-factor and --num-shards must be >= 1, "
                             "--bucket-documents >= 2")

    @property
    def shard_paths(self) -> list[str]:
        return [shard_path(self.output, i, self.num_shards, ".tfrecord.gz")
                for i in range(self.num_shards)]

    def tokenizer(self) -> JapaneseTokenizer:
        return JapaneseTokenizer(list(self.vocab), subword=self.subword,
                                 do_lower_case=self.do_lower_case)


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

    Codes travel as packed arrays: through the shuffle, a sentence is one ``bytes``."""

    def process(self, element):
        key, lines = element
        code_type = _code_type(self._config)
        sentences = [array.array(code_type, codes).tobytes()
                     for codes in map(self._tokenizer.token_codes, lines) if codes]
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
        masked = random_next = 0
        for key, inst in bucket_instances(members, dupe, config.seed, config.instance,
                                          self._specials, self._code_type):
            num_masked = len(inst.masked_lm_positions)
            batch.append((key, encode(inst.input_ids, inst.a_length, inst.masked_lm_positions,
                                      inst.masked_lm_ids, inst.is_random_next), num_masked))
            masked += num_masked
            random_next += inst.is_random_next
        self.count("instances", len(batch))
        self.count("masked_tokens", masked)
        self.count("random_next", random_next)
        if batch:
            yield batch


def _assign_buckets(element, num_docs, config):
    key, sentences = element
    buckets = max(1, math.ceil(num_docs / config.bucket_documents))
    for dupe in range(config.dupe_factor):
        yield (dupe, stable_key(config.seed, f"bucket:{key}:{dupe}") % buckets), (key, sentences)


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
                               vocab_sha256=hashlib.sha256(vocab_bytes).hexdigest())
    return common.finish_job(config, header,
                             [read[STATS], tokenized[STATS], created[STATS], written],
                             [read[DEAD]], _summarize)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertjp pretraining-data", allow_abbrev=False,
        description="Create whole-word-masked MLM + NSP instances from corpus shards as gzip "
        "TFRecords with Model Garden's feature names.",
        epilog=common.EPILOG.split("Outputs:")[0]
        + "Outputs: PREFIX-SSSSS-of-NNNNN.tfrecord.gz, PREFIX.dead-letter.jsonl, "
        "PREFIX.manifest.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", required=True, metavar="GLOB",
                        help="corpus files (one sentence per line, empty line between documents)")
    parser.add_argument("--vocab", required=True, metavar="DIR_OR_FILE",
                        help="a tokenizer directory or its vocab.txt")
    parser.add_argument("--output", required=True, metavar="PREFIX")
    parser.add_argument("--num-shards", type=int, default=8, metavar="N")
    parser.add_argument("--subword", choices=("wordpiece", "character"), default="wordpiece")
    parser.add_argument("--do-lower-case", action="store_true",
                        help="lowercase as the reference's default does (off: the vocabulary "
                        "is cased; see README, the lowercasing trap)")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--max-predictions-per-seq", type=int, default=20)
    parser.add_argument("--masked-lm-prob", type=float, default=0.15)
    parser.add_argument("--short-seq-prob", type=float, default=0.1)
    parser.add_argument("--dupe-factor", type=int, default=10)
    parser.add_argument("--random-seed", type=int, default=12345)
    parser.add_argument("--no-whole-word-mask", dest="do_whole_word_mask",
                        action="store_false", help="mask tokens, not whole MeCab words")
    parser.add_argument("--reference-shuffle", action="store_true",
                        help="order the mask candidates with the reference's full rng.shuffle "
                        "(default: the same uniform order, drawn lazily: ~5x fewer draws)")
    parser.add_argument("--bucket-documents", type=int, default=256, metavar="N",
                        help="documents per random-next bucket (default: 256)")
    parser.add_argument("--v1-feature-names", action="store_true",
                        help="input_ids/segment_ids instead of input_word_ids/input_type_ids")
    add_common_arguments(parser)
    return parser


def _vocab_path(path: str) -> str:
    return path if path.endswith(".txt") else posixpath.join(path, "vocab.txt")


def config_from_args(args) -> PretrainingDataConfig:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(_vocab_path(args.vocab)) as f:
        text = f.read().decode("utf-8")
    vocab = tuple(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"))
    return PretrainingDataConfig(
        inputs=tuple(args.input), output=args.output, seed=args.random_seed, vocab=vocab,
        subword=args.subword, do_lower_case=args.do_lower_case,
        instance=InstanceConfig(max_seq_length=args.max_seq_length,
                                max_predictions_per_seq=args.max_predictions_per_seq,
                                masked_lm_prob=args.masked_lm_prob,
                                short_seq_prob=args.short_seq_prob,
                                do_whole_word_mask=args.do_whole_word_mask,
                                reference_shuffle=args.reference_shuffle),
        dupe_factor=args.dupe_factor, num_shards=args.num_shards,
        bucket_documents=args.bucket_documents, v2_feature_names=not args.v1_feature_names)


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs ``bertjp pretraining-data``; returns the manifest."""
    return common.run_command(make_parser(), argv, config_from_args, build)

