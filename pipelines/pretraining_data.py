"""``bertjp pretraining-data``: corpus shards → masked-LM + NSP instances as gzip TFRecords.

    ReadFiles(ReadDocumentsFn) ──Reshuffle──→ Tokenize (MeCab + WordPiece/character)
      → CreateInstances: BucketDocuments (for each dupe pass a seeded bucket per
        document, GroupByKey(pass, bucket)), then the reference's algorithm per bucket
        (the random next segment comes from another document of the same bucket)
      → WriteShards(.tfrecord.gz)                                       + manifest

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

import array
import dataclasses
import hashlib
import logging
import math
import posixpath
from typing import Sequence

import apache_beam as beam

from bertjp.instances import Specials, bucket_instances
from bertjp.manifest import ShardRow, Summary, summarize
from bertjp.mecab import NUL
from bertjp.records import InstanceEncoder
from bertjp.sharding import stable_key
from bertjp.streams import LineTooLong
from pipelines import common, runner
from pipelines.io import ReadFileFn
from pipelines.pretraining_config import (  # noqa: F401 - the command's flags and config
    MAX_SEQ_LENGTH,
    PretrainingDataConfig,
    config_from_args,
    instance_values,
    make_parser,
)
from pipelines.shards import WriteShards
from pipelines.stats import Tallied, TalliedParDo, TallyDoFn, dead_letter
from pipelines.transforms import ReadFiles

__all__ = ["BucketDocuments", "CreateInstances", "PretrainingDataConfig", "assign_buckets",
           "build", "config_from_args", "make_parser", "run"]

UNK_WARNING_RATE = 0.05
"""A share of ``[UNK]`` tokens above this is a warning."""
_LOG = logging.getLogger(__name__)


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
        members = list(members)
        if dupe == 0:  # each document is in one bucket per pass: count it once
            self.count("documents_used", len(members))
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


def assign_buckets(element, num_docs: int, config: PretrainingDataConfig):
    """Puts a document in one seeded random-next bucket of each dupe pass.

    Args:
      element: a tokenized document, ``(key, sentences)``.
      num_docs: the corpus's documents: each pass has ``ceil(num_docs /
        config.bucket_documents)`` buckets.
      config: the job's configuration (seed, dupe factor, bucket size).

    Yields:
      ``((dupe, bucket), (key, sentences))``, one per dupe pass.
    """
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


def _summarize(counts: dict, outputs: list) -> Summary:
    """Documents read (by the reader) against documents that reached instance creation
    (counted there, in dupe pass 0) plus dropped; instances, tokens, [UNK] rate, NULs,
    truncation, and per shard its instances and masked tokens."""
    tokens, unk = counts.get("tokens", 0), counts.get("unk_tokens", 0)
    warnings = [w for w in (_unk_warning(unk, tokens),) if w]
    for warning in warnings:
        _LOG.warning("%s", warning)
    rows = [ShardRow(path=o.path, instances=o.records, masked_tokens=o.masked_tokens or 0,
                     bytes=o.content_bytes)
            for o in sorted(outputs, key=lambda o: o.path) if o.role == "shard"]
    return dataclasses.replace(
        summarize(counts, outputs, unit="documents", records_out="documents_used"),
        shards=rows, instances=counts.get("instances", 0),
        masked_tokens=counts.get("masked_tokens", 0), random_next=counts.get("random_next", 0),
        tokens=tokens, unk_tokens=unk, unk_rate=unk / max(1, tokens),
        nul_characters=counts.get("nul_characters", 0),
        tokens_truncated=counts.get("tokens_truncated", 0), warnings=warnings)


class BucketDocuments(beam.PTransform):
    """Tokenized documents → ``((dupe, bucket), [(key, sentences), ...])``.

    Every document lands in one bucket of each dupe pass (see :func:`assign_buckets`):
    a seeded random sample of about ``bucket_documents`` documents of the corpus.

    Args:
      config: the job's configuration (seed, dupe factor, bucket size).
    """

    def __init__(self, config: PretrainingDataConfig):
        super().__init__()
        self._config = config

    def expand(self, docs):
        num_docs = beam.pvalue.AsSingleton(
            docs | "CountDocuments" >> beam.combiners.Count.Globally())
        return (
            docs
            | "AssignBuckets" >> beam.FlatMap(assign_buckets, num_docs, self._config)
            | "GroupBuckets" >> beam.GroupByKey()
        )


class CreateInstances(beam.PTransform):
    """Tokenized documents → the instances' TFRecords, one batch per bucket.

    :class:`BucketDocuments`, then :class:`CreateInstancesFn` on each bucket (a
    random next segment comes from another document of the same bucket).

    Args:
      config: the job's configuration.

    Returns:
      A :class:`pipelines.stats.Tallied`: lists of ``(key, record, masked tokens)``
      for ``WriteShards(batched=True, count_name=...)``, and the tallies.
    """

    def __init__(self, config: PretrainingDataConfig):
        super().__init__()
        self._config = config

    def expand(self, docs) -> Tallied:
        return (
            docs
            | "Buckets" >> BucketDocuments(self._config)
            | "Create" >> TalliedParDo(CreateInstancesFn(self._config))
        )


def build(pipeline: beam.Pipeline, config: PretrainingDataConfig):
    """Adds the pretraining-data job to ``pipeline``; returns the manifest PCollection."""
    reader = ReadDocumentsFn(config.max_line_bytes)
    docs = pipeline | "ReadDocuments" >> ReadFiles(config.inputs, reader)
    tokenized = (
        docs.main
        | "SpreadDocuments" >> beam.Reshuffle()
        | "Tokenize" >> TalliedParDo(TokenizeFn(config))
    )
    instances = tokenized.main | "CreateInstances" >> CreateInstances(config)
    written = instances.main | "WriteShards" >> WriteShards(
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
                             [docs.stats, tokenized.stats, instances.stats, written],
                             [docs.dead, tokenized.dead, instances.dead], _summarize)


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs ``bertjp pretraining-data``; returns the manifest."""
    return runner.run_command(
        make_parser(), argv, config_from_args, build,
        expected="is it a corpus (UTF-8 text, one sentence per line, an empty line after each "
        "document, as the corpus commands write)?")

