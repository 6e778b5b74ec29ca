"""Runs the pipelines' own steps on the sample and times each phase in CPU seconds.

The stages run one after another in this process, each on what the previous one
wrote, with the pipelines' configuration classes and DoFns (driven as a worker
drives them, see :mod:`.steps`), in a temporary folder:

* the corpus stage: ``wiki_corpus.ReadPagesFn`` on the sample's lines, then
  ``SplitPagesFn`` (cleaning, MeCab sentence split, filters); or
  ``cc100_corpus.ReadCc100DocumentsFn``; then ``WriteShards``' steps into gzipped
  corpus shards (``--gzip``);
* ``train-vocab``: ``ReadLinesFn`` on those shards, ``CountWordsFn`` and the sum
  per word, then the trainer (timed apart: it runs once, on one worker);
* ``pretraining-data``: ``ReadDocumentsFn`` on the corpus shards, ``TokenizeFn``,
  the bucket assignment of every dupe pass and the grouping,
  ``CreateInstancesFn``, then ``WriteShards``' steps into gzipped TFRecord shards.

What a worker builds in ``setup()`` or on its first element (MeCab taggers) is
built before the timing. Seeds are the commands' own defaults. The sample's corpus
and records are written as one shard each: a real shard is far larger than the
sample, and one file compresses as it does (the shard counts only decide how many
cores the projection gives the writing).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import sys
import tempfile
import time

from bertjp.instances import InstanceConfig
from bertjp_cli.estimate.config import EstimateConfig
from bertjp_cli.estimate.sample import KINDS, MB, Sample, detect_kind, read_sample
from bertjp_cli.estimate.steps import DoFnRun, encoded_bytes, write_shards
from bertjp_cli.estimate.vocabulary import Vocabulary
from pipelines import cc100_corpus, pretraining_data, train_vocab, wiki_corpus

__all__ = ["Clock", "CorpusMeasure", "DataMeasure", "Measured", "VocabMeasure", "measure"]

_CORPUS_COMMANDS = {"wiki": wiki_corpus, "cc100": cc100_corpus}
_STAGES = {"wiki": "wiki-corpus", "cc100": "cc100-corpus"}
_SAMPLE_SHARDS = 1


class Clock:
    """CPU seconds of this process, summed per named phase."""

    def __init__(self, **seconds: float):
        self.seconds = collections.Counter(seconds)

    @contextlib.contextmanager
    def __call__(self, name: str):
        """Adds the CPU seconds of the ``with`` block to phase ``name``."""
        start = time.process_time()
        try:
            yield
        finally:
            self.seconds[name] += time.process_time() - start


def _progress(message: str) -> None:
    """A progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def _command_default(command, flag: str):
    """A pipeline command's default for ``flag`` (its parser's, the one source)."""
    return command.make_parser().get_default(flag)


@dataclasses.dataclass
class CorpusMeasure:
    """The corpus stage on the sample.

    Attributes:
      name: ``wiki-corpus`` or ``cc100-corpus``.
      paths: the corpus shards written (gzipped).
      pages: the dump's pages (``None`` for CC-100).
      documents: the documents written.
      output_bytes: their bytes, uncompressed.
      gzip_bytes: the shards' bytes.
      shuffle_bytes: bytes through the job's shuffles.
      seconds: CPU seconds per phase (``read``, ``split``, ``write``).
    """

    name: str
    paths: list[str]
    pages: int | None
    documents: int
    output_bytes: int
    gzip_bytes: int
    shuffle_bytes: int
    seconds: dict


@dataclasses.dataclass
class VocabMeasure:
    """The train-vocab stage on the sample's corpus.

    Attributes:
      sentences: the lines counted.
      input_bytes: their bytes, newlines included.
      words: the MeCab words counted.
      distinct_words: the distinct ones (the trainer's input).
      shuffle_bytes: bytes through the job's shuffles.
      seconds: CPU seconds per phase (``read``, ``count``).
      train_seconds: CPU seconds of the trainer on the sample's counts.
    """

    sentences: int
    input_bytes: int
    words: int
    distinct_words: int
    shuffle_bytes: int
    seconds: dict
    train_seconds: float


@dataclasses.dataclass
class DataMeasure:
    """The pretraining-data stage on the sample's corpus.

    Attributes:
      subword: the subword type tokenized with.
      tokens: the tokens (``TokenizeFn``'s count).
      instances: the instances of every dupe pass.
      record_bytes: the records' bytes, uncompressed.
      gzip_bytes: the shards' bytes.
      shuffle_bytes: bytes through the job's shuffles.
      seconds: CPU seconds per phase (``read``, ``tokenize``, ``instances``, ``write``).
    """

    subword: str
    tokens: int
    instances: int
    record_bytes: int
    gzip_bytes: int
    shuffle_bytes: int
    seconds: dict


@dataclasses.dataclass
class Measured:
    """Everything measured on the sample.

    Attributes:
      kind: what the input was taken for (``wiki`` or ``cc100``).
      detected: what it looks like.
      sample: the sample.
      corpus_shards: the corpus shards the jobs write (the command's default unless
        ``--corpus-shards``); they bound the cores of the writing and of reading
        the corpus.
      data_shards: the pretraining-data shards they write.
      corpus: the corpus stage.
      vocab: train-vocab.
      data: pretraining-data.
    """

    kind: str
    detected: str
    sample: Sample
    corpus_shards: int
    data_shards: int
    corpus: CorpusMeasure
    vocab: VocabMeasure
    data: DataMeasure

    @property
    def corpus_ratio(self) -> float:
        """Corpus bytes per decompressed input byte."""
        return self.corpus.output_bytes / self.sample.nbytes


# ----------------------------------------------------------------------------- corpus


def _corpus_config(kind: str, sample: Sample, mecab_dict: str, folder: str):
    """The corpus command's configuration for the sample (its seed, gzipped shards)."""
    command = _CORPUS_COMMANDS[kind]
    common = {"inputs": (sample.path,), "output": os.path.join(folder, "corpus"),
              "num_shards": _SAMPLE_SHARDS, "gzip": True,
              "seed": _command_default(command, "seed")}
    if kind == "wiki":
        return wiki_corpus.WikiCorpusConfig(**common, mecab_dict=mecab_dict)
    return cc100_corpus.Cc100CorpusConfig(**common)


def _wiki_documents(sample: Sample, job, clock: Clock) -> tuple[list, list]:
    """``ReadPagesFn`` then ``SplitPagesFn``: the pages and the documents."""
    reader = DoFnRun(wiki_corpus.ReadPagesFn(job.max_line_bytes))
    with clock("read"):
        pages = reader.read(sample.path, sample.lines)
    splitter = DoFnRun(wiki_corpus.SplitPagesFn(job))
    with clock("split"):
        return pages, splitter.process(pages)


def _cc100_documents(sample: Sample, job, clock: Clock) -> list:
    """``ReadCc100DocumentsFn``: the documents."""
    reader = DoFnRun(cc100_corpus.ReadCc100DocumentsFn(job))
    with clock("read"):
        return reader.read(sample.path, sample.lines)


def measure_corpus(sample: Sample, kind: str, mecab_dict: str, folder: str) -> CorpusMeasure:
    """Runs the corpus stage on the sample; writes its shards into ``folder``.

    Raises:
      ValueError: the sample gave no document (another kind of input?).
    """
    _progress(f"measuring {_STAGES[kind]} on {sample.nbytes / MB:.1f} MB of sample ...")
    job = _corpus_config(kind, sample, mecab_dict, folder)
    clock = Clock(read=sample.read_seconds)
    if kind == "wiki":
        pages, docs = _wiki_documents(sample, job, clock)
    else:
        pages, docs = None, _cc100_documents(sample, job, clock)
    if not docs:
        raise ValueError(f"the sample of {sample.path} gave no corpus document: is it "
                         f"{KINDS[kind]}? (--kind; or a larger --sample-mb)")
    with clock("write"):
        written = write_shards(docs, job.shard_paths, os.path.join(folder, "corpus-parts"),
                               compress=job.gzip, chunk_bytes=job.chunk_bytes)
    return CorpusMeasure(
        _STAGES[kind], job.shard_paths, None if pages is None else len(pages), len(docs),
        sum(s["content_bytes"] for s in written), sum(s["bytes"] for s in written),
        encoded_bytes(pages or ()) + encoded_bytes(docs), dict(clock.seconds))


# ----------------------------------------------------------------------------- train-vocab


def _sum_per_word(pairs) -> collections.Counter:
    """``SumPerWord``: the count of each word."""
    totals = collections.Counter()
    for word, n in pairs:
        totals[word] += n
    return totals


def _train_seconds(totals: collections.Counter, job) -> float:
    """CPU seconds of train-vocab's trainer (and its files) on the counts."""
    start = time.process_time()
    for _ in train_vocab.train_and_write(dict(totals), job):  # the job's Train step
        pass
    return time.process_time() - start


def measure_vocab(corpus: CorpusMeasure, folder: str) -> VocabMeasure:
    """Runs train-vocab on the corpus shards; the tokenizer goes into ``folder``."""
    job = train_vocab.TrainVocabConfig(inputs=tuple(corpus.paths),
                                       output=os.path.join(folder, "tokenizer"))
    clock = Clock()
    reader = DoFnRun(train_vocab.ReadLinesFn(job.max_line_bytes))
    with clock("read"):
        lines = reader.process(corpus.paths)
    nbytes = sum(len(line.encode("utf-8")) + 1 for line in lines)
    _progress(f"measuring train-vocab on {nbytes / MB:.1f} MB of sentences ...")
    counter = DoFnRun(train_vocab.CountWordsFn(job))
    counter.warm_up(lines[0])
    with clock("count"):
        totals = _sum_per_word(counter.process(lines))
    train_seconds = _train_seconds(totals, job)
    return VocabMeasure(len(lines), nbytes, counter.finish()["words"], len(totals),
                        encoded_bytes(lines) + encoded_bytes(totals.items()),
                        dict(clock.seconds), train_seconds)


# ----------------------------------------------------------------------------- pretraining-data


def _pretraining_config(corpus: CorpusMeasure, vocabulary: Vocabulary, config: EstimateConfig,
                        folder: str) -> pretraining_data.PretrainingDataConfig:
    """pretraining-data's configuration for the corpus shards (its seed)."""
    return pretraining_data.PretrainingDataConfig(
        inputs=tuple(corpus.paths), output=os.path.join(folder, "pretraining"),
        seed=_command_default(pretraining_data, "seed"), vocab=vocabulary.tokens,
        **dataclasses.asdict(vocabulary.settings), tokenizer_config=vocabulary.source,
        instance=InstanceConfig(max_seq_length=config.max_seq_length,
                                max_predictions_per_seq=config.max_predictions_per_seq),
        dupe_factor=config.dupe_factor, num_shards=_SAMPLE_SHARDS,
        bucket_documents=config.bucket_documents)


def _instance_creator(job) -> DoFnRun:
    """``CreateInstancesFn``, set up.

    Raises:
      ValueError: the vocabulary lacks a special token.
    """
    try:
        return DoFnRun(pretraining_data.CreateInstancesFn(job))
    except KeyError as err:
        raise ValueError(f"the vocabulary has no {err.args[0]} token") from None


def _buckets(tokenized: list, job) -> tuple[list, dict]:
    """``AssignBuckets`` + ``GroupBuckets``.

    Returns:
      The assigned elements, and the members of each (dupe pass, bucket).
    """
    assigned = [kv for element in tokenized
                for kv in pretraining_data.assign_buckets(element, len(tokenized), job)]
    groups = collections.defaultdict(list)
    for bucket, member in assigned:
        groups[bucket].append(member)
    return assigned, groups


def measure_pretraining(corpus: CorpusMeasure, vocabulary: Vocabulary, config: EstimateConfig,
                        folder: str) -> DataMeasure:
    """Runs pretraining-data on the corpus shards; its shards go into ``folder``.

    Raises:
      ValueError: no token came out, or the vocabulary lacks a special token.
    """
    job = _pretraining_config(corpus, vocabulary, config, folder)
    _progress(f"measuring pretraining-data on {corpus.output_bytes / MB:.1f} MB of corpus "
              f"(dupe factor {job.dupe_factor}) ...")
    clock = Clock()
    reader = DoFnRun(pretraining_data.ReadDocumentsFn(job.max_line_bytes))
    with clock("read"):
        docs = reader.process(corpus.paths)
    tokenizer = DoFnRun(pretraining_data.TokenizeFn(job))
    tokenizer.warm_up(docs[0])
    with clock("tokenize"):
        tokenized = tokenizer.process(docs)
    if not tokenized:
        raise ValueError("the sample's corpus gave no tokens: is the vocabulary right?")
    creator = _instance_creator(job)
    with clock("instances"):
        assigned, groups = _buckets(tokenized, job)
        records = [r for batch in creator.process(groups.items()) for r in batch]
    with clock("write"):
        written = write_shards(records, job.shard_paths, os.path.join(folder, "data-parts"),
                               compress=True, chunk_bytes=job.chunk_bytes)
    counts = tokenizer.finish() + creator.finish()
    return DataMeasure(
        job.subword, counts["tokens"], counts["instances"],
        sum(s["content_bytes"] for s in written), sum(s["bytes"] for s in written),
        encoded_bytes(docs) + encoded_bytes(assigned) + encoded_bytes(records),
        dict(clock.seconds))


# ----------------------------------------------------------------------------- all


def measure(path: str, config: EstimateConfig, vocabulary: Vocabulary) -> Measured:
    """Reads the sample of ``path`` and measures the three stages on it.

    Raises:
      CorruptInputError: the compressed file is truncated or corrupt.
      ValueError: the sample gives no document or no token.
    """
    _progress(f"reading the first {config.sample_mb:g} MB of {path} ...")
    sample = read_sample(path, config.sample_bytes)
    detected = detect_kind(sample.lines)
    kind = detected if config.kind == "auto" else config.kind
    corpus_shards = (config.corpus_shards
                     or _command_default(_CORPUS_COMMANDS[kind], "num_shards"))
    data_shards = config.data_shards or corpus_shards
    with tempfile.TemporaryDirectory(prefix="bertjp-estimate-") as folder:
        corpus = measure_corpus(sample, kind, config.mecab_dict, folder)
        vocab = measure_vocab(corpus, folder)
        data = measure_pretraining(corpus, vocabulary, config, folder)
    return Measured(kind, detected, sample, corpus_shards, data_shards, corpus, vocab, data)
