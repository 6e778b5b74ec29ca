"""``bertjp estimate``: measure each stage on a sample of the input, project the whole run.

It reads the first ``--sample-mb`` MB of the (first) input file, decompressing it
as the pipelines do, detects a Wikipedia Cirrussearch dump or CC-100 text, and
runs on that sample, in this process and timed step by step, the code the
workers run:

* corpus stage: ``wiki-corpus`` (JSON parsing, cleaning, MeCab sentence
  splitting, filtering) or ``cc100-corpus`` (whitespace normalisation), and the
  gzip of the shards;
* ``train-vocab``: MeCab word counting on the corpus sentences;
* ``pretraining-data``: reading the corpus, tokenization, instance creation and
  encoding for every dupe pass, and the gzip of the records.

The CPU seconds per MB of each step become :class:`bertjp.costs.StageRate` s, and
:func:`bertjp.costs.projection` projects them onto the whole input (the matched
files' size times the sample's decompression ratio) and a Dataflow cluster.
"""

from __future__ import annotations

import argparse
import array
import bz2
import collections
import contextlib
import dataclasses
import gzip
import io
import json
import lzma
import os
import posixpath
import sys
import time
import zlib
from typing import Sequence

from bertjp import cirrus, costs
from bertjp.alphabet import unidic_lite_alphabet
from bertjp.corpus import BadLine, format_document, group_cc100_documents
from bertjp.instances import InstanceConfig, Specials, bucket_instances
from bertjp.mecab import MecabDictionary
from bertjp.records import InstanceEncoder
from bertjp.sentences import SentenceFilter, SentenceSplitter
from bertjp.sharding import stable_key
from bertjp.streams import CorruptInputError, LineTooLong, iter_lines, open_decompressed
from bertjp.text import clean_wiki_text
from bertjp.tokenization import JapaneseTokenizer
from bertjp.vocab_files import character_vocab

__all__ = ["Sample", "detect_kind", "estimate", "main", "make_parser", "read_sample"]

MB = 1_000_000
_SMALL_READ = 64 << 10
_RATIO_MIN_BYTES = 4_000_000  # compressed bytes read for the decompression ratio
_WARM_UP = "MeCabを準備する。"
_KINDS = {"wiki": "Wikipedia Cirrussearch dump", "cc100": "CC-100 text"}
_CORPUS_SHARDS = {"wiki": 8, "cc100": 64}  # the recipe's files, the commands' defaults
_CORPUS_SEED, _DATA_SEED = 0, 12345  # the commands' default seeds


# ----------------------------------------------------------------------------- input


@dataclasses.dataclass
class Sample:
    """The first lines of an input file, decompressed.

    Attributes:
      path: the file.
      lines: ``(line_number, bytes | LineTooLong)`` as :func:`bertjp.streams.iter_lines`.
      nbytes: decompressed bytes of those lines, newlines included.
      read_seconds: CPU seconds to read, decompress, hash and split them.
      compression: ``gzip``, ``bzip2``, ``xz`` or ``none``.
      ratio: decompressed bytes per compressed byte (1 for plain text).
      ratio_bytes: the compressed bytes the ratio was measured on.
      whole_file: the ratio was measured on the whole file.
    """

    path: str
    lines: list
    nbytes: int
    read_seconds: float
    compression: str
    ratio: float
    ratio_bytes: int
    whole_file: bool


class _SmallReads(io.RawIOBase):
    """Hands out at most 64 KiB per read, so that the compressed bytes read stay close
    to the bytes the decompressor has used (for the decompression ratio)."""

    def __init__(self, f):
        super().__init__()
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._f.read(min(len(buffer), _SMALL_READ))
        buffer[: len(data)] = data
        return len(data)


def _compression(stream) -> str:
    kinds = ((gzip.GzipFile, "gzip"), (bz2.BZ2File, "bzip2"), (lzma.LZMAFile, "xz"))
    return next((name for cls, name in kinds if isinstance(stream, cls)), "none")


def _first_lines(stream, path: str, sample_bytes: int) -> tuple[list, int]:
    lines, nbytes = [], 0
    for lineno, line in iter_lines(stream, path):
        lines.append((lineno, line))
        nbytes += (line.size if isinstance(line, LineTooLong) else len(line)) + 1
        if nbytes >= sample_bytes:
            break
    return lines, nbytes


def _drain(stream, hasher, path: str) -> tuple[int, bool]:
    """Decompresses on until 4 MB of compressed input are read; returns the bytes and
    whether the file ended."""
    total = 0
    try:
        while hasher.bytes_read < _RATIO_MIN_BYTES:
            block = stream.read(1 << 20)
            if not block:
                return total, True
            total += len(block)
    except (EOFError, OSError, zlib.error, lzma.LZMAError) as err:
        raise CorruptInputError(f"{path}: compressed input is truncated or corrupt "
                                f"({type(err).__name__}: {err})") from err
    return total, False


def read_sample(path: str, sample_bytes: int) -> Sample:
    """Reads the first ``sample_bytes`` decompressed bytes (whole lines) of ``path``.

    The file is opened through Beam's ``FileSystems`` (local or ``gs://``) and
    decompressed with :func:`bertjp.streams.open_decompressed`, as the pipelines do.

    Raises:
      CorruptInputError: the compressed file is truncated or corrupt.
    """
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    try:
        stream, hasher = open_decompressed(_SmallReads(raw), path)
        start = time.process_time()
        lines, nbytes = _first_lines(stream, path, sample_bytes)
        read_seconds = time.process_time() - start
        kind = _compression(stream)
        if kind == "none":
            return Sample(path, lines, nbytes, read_seconds, kind, 1.0, nbytes, False)
        more, ended = _drain(stream, hasher, path)
    finally:
        raw.close()
    ratio = (nbytes + more) / max(1, hasher.bytes_read)
    return Sample(path, lines, nbytes, read_seconds, kind, ratio, hasher.bytes_read, ended)


def _match(patterns: Sequence[str]) -> list[tuple[str, int]]:
    """The distinct files the patterns match, with their sizes in bytes."""
    from apache_beam.io.filesystems import FileSystems

    files: dict[str, int] = {}
    for pattern in patterns:
        try:
            metadata = FileSystems.match([pattern])[0].metadata_list
        except Exception as err:  # pylint: disable=broad-except
            raise FileNotFoundError(f"--input {pattern!r}: {err}") from err
        found = sorted((m.path, m.size_in_bytes) for m in metadata
                       if "://" in m.path or not os.path.isdir(m.path))
        if not found:
            raise FileNotFoundError(f"--input {pattern!r} matches no file")
        files.update((p, s) for p, s in found if p not in files)
    return list(files.items())


def detect_kind(lines) -> str:
    """``wiki`` when the first non-blank line is a Cirrussearch action or page line,
    else ``cc100``."""
    for _, raw in lines:
        if isinstance(raw, LineTooLong) or not raw.strip():
            continue
        try:
            cirrus.parse_line(raw)
        except cirrus.BadRecord:
            return "cc100"
        return "wiki"
    return "cc100"


# ----------------------------------------------------------------------------- measuring


class _Clock:
    """CPU seconds of this process, summed per named step."""

    def __init__(self):
        self.seconds = collections.Counter()

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.process_time()
        try:
            yield
        finally:
            self.seconds[name] += time.process_time() - start


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _wiki_pages(lines, clock: _Clock) -> list[cirrus.Page]:
    """``ReadPagesFn``: the pages of the dump lines (bad records skipped)."""
    pages = []
    with clock("read"):
        for _, raw in lines:
            if isinstance(raw, LineTooLong) or not raw.strip():
                continue
            try:
                page = cirrus.parse_line(raw)
            except cirrus.BadRecord:
                continue
            if page is not cirrus.ACTION:
                pages.append(page)
    return pages


def _wiki_documents(pages, dictionary: MecabDictionary, clock: _Clock) -> list:
    """``SplitPagesFn``: ``(key, document bytes, sentences)`` of the pages that keep a
    sentence."""
    splitter = SentenceSplitter(dictionary)
    splitter.split(_WARM_UP)  # build the tagger outside the timing, as setup() does
    keep = SentenceFilter()
    docs = []
    with clock("split"):
        for page in pages:
            text = clean_wiki_text(page.text, page.title)
            if not text:
                continue
            kept, _ = keep(splitter.split(text))
            if kept:
                key = stable_key(_CORPUS_SEED, f"wiki:{page.doc_id}")
                docs.append((key, format_document(kept).encode("utf-8"), kept))
    return docs


def _cc100_documents(sample: Sample, clock: _Clock) -> list:
    """``ReadCc100DocumentsFn``: ``(key, document bytes, lines)`` of the sample."""
    name = posixpath.basename(sample.path)
    docs = []
    with clock("read"):
        for item in group_cc100_documents(sample.lines):
            if isinstance(item, BadLine):
                continue
            key = stable_key(_CORPUS_SEED, f"cc100:{name}:{item.ordinal}")
            docs.append((key, format_document(item.lines).encode("utf-8"), list(item.lines)))
    return docs


@dataclasses.dataclass
class _Corpus:
    """The corpus stage on the sample."""

    documents: list  # sentences per document, in shard (key) order
    output_bytes: int
    gzip_data: bytes
    shuffle_bytes: int
    pages: int | None
    seconds: dict


def _measure_corpus(sample: Sample, kind: str, dictionary: MecabDictionary) -> _Corpus:
    stage = "wiki-corpus" if kind == "wiki" else "cc100-corpus"
    _progress(f"measuring {stage} on {sample.nbytes / MB:.1f} MB of sample ...")
    clock = _Clock()
    clock.seconds["read"] = sample.read_seconds
    pages = None
    if kind == "wiki":
        parsed = _wiki_pages(sample.lines, clock)
        pages = len(parsed)
        docs = _wiki_documents(parsed, dictionary, clock)
        shuffled = sum(len(p.text.encode("utf-8")) + len(p.title.encode("utf-8"))
                       for p in parsed)  # the pages' Reshuffle
    else:
        docs, shuffled = _cc100_documents(sample, clock), 0
    if not docs:
        raise ValueError(f"the sample of {sample.path} gave no corpus document: is it "
                         f"{_KINDS[kind]}? (--kind; or a larger --sample-mb)")
    with clock("write"):  # WriteShards: sort, then gzip (--gzip) as each shard is finished
        docs.sort(key=lambda d: d[0])
        data = b"".join(d[1] for d in docs)
        gz = gzip.compress(data, compresslevel=6, mtime=0)
    return _Corpus([d[2] for d in docs], len(data), gz, shuffled + len(data), pages,
                   dict(clock.seconds))


def _vocab_counts(sentences: list[str], clock: _Clock) -> tuple[int, int]:
    """``ReadLinesFn`` + ``CountWordsFn``; returns (words, bytes of the distinct words)."""
    words_of = JapaneseTokenizer(character_vocab(), subword="character")
    words_of.words(_WARM_UP)
    alphabet = set(unidic_lite_alphabet())
    raw = [s.encode("utf-8") for s in sentences]
    with clock("read"):
        lines = [r.decode("utf-8") for r in raw if r.strip()]
    totals = collections.Counter()
    n_words = covered = 0
    with clock("count"):
        for line in lines:
            words = words_of.words(line.strip())
            n_words += len(words)
            covered += sum(ch in alphabet for w in words for ch in w)  # as CountWordsFn
            totals.update(collections.Counter(words))
    return n_words, sum(len(w.encode("utf-8")) + 8 for w in totals)


@dataclasses.dataclass
class _Vocab:
    """The train-vocab stage on the sample's sentences."""

    sentences: int
    input_bytes: int
    words: int
    shuffle_bytes: int
    seconds: dict


def _measure_vocab(documents: list) -> _Vocab:
    sentences = [s for doc in documents for s in doc]
    nbytes = sum(len(s.encode("utf-8")) + 1 for s in sentences)
    _progress(f"measuring train-vocab on {nbytes / MB:.1f} MB of sentences ...")
    clock = _Clock()
    words, distinct_bytes = _vocab_counts(sentences, clock)
    return _Vocab(len(sentences), nbytes, words, nbytes + distinct_bytes, dict(clock.seconds))


def _read_corpus(gz: bytes, clock: _Clock) -> list[list[str]]:
    """``ReadDocumentsFn`` on a gzipped corpus shard."""
    docs, doc = [], []
    with clock("read"):
        stream, _ = open_decompressed(io.BytesIO(gz), "corpus.txt.gz")
        for _, raw in iter_lines(stream, "corpus.txt.gz"):
            text = raw.decode("utf-8", "ignore").strip()
            if text:
                doc.append(text)
            elif doc:
                docs.append(doc)
                doc = []
    return docs + [doc] if doc else docs


def _tokenize(docs, tokenizer: JapaneseTokenizer, code_type: str, clock: _Clock) -> list:
    """``TokenizeFn``: ``(key, [packed token codes per sentence])``."""
    tokenizer.token_codes(_WARM_UP)
    out = []
    with clock("tokenize"):
        for i, lines in enumerate(docs):
            sentences = [array.array(code_type, codes).tobytes()
                         for codes in map(tokenizer.token_codes, lines) if codes]
            if sentences:
                out.append((f"corpus.txt.gz:{i}", sentences))
    return out


@dataclasses.dataclass(frozen=True)
class _InstanceSetup:
    """What ``CreateInstancesFn.setup`` builds."""

    config: InstanceConfig
    specials: Specials
    encoder: InstanceEncoder
    code_type: str
    seed: int


def _bucket_records(members, dupe: int, setup: _InstanceSetup) -> list:
    """``CreateInstancesFn``: one bucket's ``(key, record, masked tokens)``."""
    batch = []
    for key, inst in bucket_instances(members, dupe, setup.seed, setup.config, setup.specials,
                                      setup.code_type):
        record = setup.encoder.encode(inst.input_ids, inst.a_length, inst.masked_lm_positions,
                                      inst.masked_lm_ids, inst.is_random_next)
        batch.append((key, record, len(inst.masked_lm_positions)))
    return batch


def _buckets(tokenized, dupe: int, bucket_documents: int, seed: int) -> list:
    """``_assign_buckets`` + ``GroupByKey``: the documents of each bucket of one pass."""
    count = max(1, -(-len(tokenized) // bucket_documents))
    groups = collections.defaultdict(list)
    for key, sentences in tokenized:
        groups[stable_key(seed, f"bucket:{key}:{dupe}") % count].append((key, sentences))
    return list(groups.values())


def _instances(tokenized, setup: _InstanceSetup, args, clock: _Clock) -> collections.Counter:
    """Every dupe pass: instances, encoding, then the records' gzip."""
    totals = collections.Counter()
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    for dupe in range(args.dupe_factor):
        with clock("instances"):
            batch = [r for members in _buckets(tokenized, dupe, args.bucket_documents,
                                               setup.seed)
                     for r in _bucket_records(members, dupe, setup)]
        with clock("write"):
            batch.sort()
            for _, record, _ in batch:
                totals["gzip_bytes"] += len(compressor.compress(record))
        totals["instances"] += len(batch)
        totals["record_bytes"] += sum(len(r[1]) for r in batch)
        totals["masked"] += sum(r[2] for r in batch)
    with clock("write"):
        totals["gzip_bytes"] += len(compressor.flush())
    return totals


def _measure_pretraining(corpus: _Corpus, vocab: list[str], subword: str, args) -> dict:
    _progress(f"measuring pretraining-data on {corpus.output_bytes / MB:.1f} MB of corpus "
              f"(dupe factor {args.dupe_factor}) ...")
    clock = _Clock()
    docs = _read_corpus(corpus.gzip_data, clock)
    code_type = "H" if len(vocab) <= 1 << 15 else "I"
    tokenized = _tokenize(docs, JapaneseTokenizer(vocab, subword=subword), code_type, clock)
    if not tokenized:
        raise ValueError("the sample's corpus gave no tokens: is the vocabulary right?")
    config = InstanceConfig(max_seq_length=args.max_seq_length,
                            max_predictions_per_seq=args.max_predictions_per_seq)
    try:
        specials = Specials.from_vocab(vocab)
    except KeyError as err:
        raise ValueError(f"the vocabulary has no {err.args[0]} token") from None
    setup = _InstanceSetup(config, specials, InstanceEncoder(
        args.max_seq_length, args.max_predictions_per_seq), code_type, _DATA_SEED)
    totals = _instances(tokenized, setup, args, clock)
    code_bytes = sum(len(s) for _, sentences in tokenized for s in sentences)
    shuffle = (corpus.output_bytes + args.dupe_factor * code_bytes
               + totals["record_bytes"] + 8 * totals["instances"])
    return {**totals, "documents": len(tokenized), "tokens": code_bytes // array.array(
        code_type).itemsize, "shuffle_bytes": shuffle, "seconds": dict(clock.seconds)}


# ----------------------------------------------------------------------------- projecting


@dataclasses.dataclass
class _Measured:
    """Everything measured on the sample."""

    kind: str
    detected: str
    sample: Sample
    corpus: _Corpus
    vocab: _Vocab
    data: dict

    @property
    def corpus_ratio(self) -> float:
        """Corpus bytes per decompressed input byte."""
        return self.corpus.output_bytes / self.sample.nbytes


def _phases(seconds: dict, sample_mb: float, limits: dict) -> tuple[costs.Phase, ...]:
    return tuple(costs.Phase(name, seconds.get(name, 0.0) / sample_mb, limits[name])
                 for name in limits)


def _vocab_input_mb(m: _Measured, input_mb: float, sample_sentences: int) -> float:
    """MB of the tokenizer-training sample: ``sample_sentences`` corpus lines, or all."""
    corpus_sentences = input_mb * m.corpus_ratio * MB / m.corpus.output_bytes * m.vocab.sentences
    bytes_per_sentence = m.vocab.input_bytes / m.vocab.sentences
    return min(corpus_sentences, sample_sentences) * bytes_per_sentence / MB


def _rates(m: _Measured, input_mb: float, files: int, args) -> list[costs.StageRate]:
    """The three stages' rates. ``None`` cores: every core; else files or shards."""
    sample_mb, corpus_mb = m.sample.nbytes / MB, m.corpus.output_bytes / MB
    limits = {"read": files, "split": None, "write": args.corpus_shards}
    if m.kind != "wiki":
        del limits["split"]
    first = costs.StageRate(
        "wiki-corpus" if m.kind == "wiki" else "cc100-corpus",
        _phases(m.corpus.seconds, sample_mb, limits), m.corpus_ratio,
        m.corpus.shuffle_bytes / m.sample.nbytes)
    vocab_mb = _vocab_input_mb(m, input_mb, args.vocab_sample_sentences)
    second = costs.StageRate(
        "train-vocab",
        _phases(m.vocab.seconds, m.vocab.input_bytes / MB, {"read": 1, "count": None}),
        0.0, m.vocab.shuffle_bytes / m.vocab.input_bytes,
        vocab_mb / input_mb if input_mb else 0.0)
    third = costs.StageRate(
        "pretraining-data",
        _phases(m.data["seconds"], corpus_mb, {"read": args.corpus_shards, "tokenize": None,
                                               "instances": None,
                                               "write": args.data_shards}),
        m.data["record_bytes"] / m.corpus.output_bytes,
        m.data["shuffle_bytes"] / m.corpus.output_bytes, m.corpus_ratio)
    return [first, second, third]


def _measured_rates(rate: costs.StageRate, seconds: dict, sample_mb: float) -> dict:
    total = sum(seconds.values())
    return {"sample_input_mb": sample_mb, "cpu_seconds": dict(seconds),
            "seconds_per_mb": {p.name: p.seconds_per_mb for p in rate.phases},
            "mb_per_s_per_core": sample_mb / total if total else None}


def _stage_details(m: _Measured, rates, stages: list[dict]) -> None:
    """Adds what was measured, and per-stage extras, to the projected stage dicts."""
    corpus, vocab, data = m.corpus, m.vocab, m.data
    seconds = [corpus.seconds, vocab.seconds, data["seconds"]]
    sample_mbs = [m.sample.nbytes / MB, vocab.input_bytes / MB, corpus.output_bytes / MB]
    for stage, rate, secs, sample_mb in zip(stages, rates, seconds, sample_mbs, strict=True):
        stage["measured"] = _measured_rates(rate, secs, sample_mb)
    gz_ratio = corpus.output_bytes / len(corpus.gzip_data)
    stages[0]["written_gzip_mb"] = stages[0]["output_mb"] / gz_ratio
    stages[1]["sentences"] = stages[1]["input_mb"] * MB * vocab.sentences / vocab.input_bytes
    per_corpus_mb = data["instances"] / (corpus.output_bytes / MB)
    stages[2].update({
        "instances": per_corpus_mb * stages[2]["input_mb"],
        "instances_per_corpus_mb": per_corpus_mb,
        "bytes_per_record": data["record_bytes"] / max(1, data["instances"]),
        "written_gzip_mb": (stages[2]["output_mb"] * data["gzip_bytes"]
                            / max(1, data["record_bytes"])),
    })
    cpu = sum(data["seconds"].values())
    stages[2]["measured"]["instances_per_s_per_core"] = data["instances"] / cpu if cpu else None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "this machine's CPU"


def _assumptions(m: _Measured, proj: costs.Projection, args) -> list[str]:
    p = proj.prices
    return [
        f"prices: Dataflow batch list prices, {p.region}, written down {p.date} from "
        f"{p.source}; list prices to be checked, no discounts: vCPU-hour {_price(p.vcpu_hour)}, "
        f"memory GB-hour {_price(p.memory_gb_hour)}, standard PD GB-hour "
        f"{_price(p.pd_standard_gb_hour)}, SSD PD GB-hour {_price(p.pd_ssd_gb_hour)}, "
        f"Shuffle {_price(p.shuffle_gb)} per GB",
        f"each stage is one Dataflow job with a fixed {proj.startup_minutes:g}-minute start-up; "
        "the jobs run one after another; every worker is billed for its whole job (a fixed "
        "--num_workers; autoscaling makes the narrow phases cheaper)",
        f"one SDK process per vCPU ({proj.cores} in all); rates are CPU seconds of one "
        f"process on {_cpu_name()}, scaled by --core-speed {proj.core_speed:g}: Dataflow "
        "cores differ (a vCPU is a hyperthread; try 0.7 when two processes share a core)",
        "a compressed input file is read by one core, and each output shard is written and "
        "gzipped by one core (the 'cores' column)",
        f"the sample is the first {m.sample.nbytes / MB:.2f} MB of {m.sample.path}; the "
        "whole input is assumed to look like it (decompression ratio, pages, sentences)",
        f"corpus: {args.corpus_shards} gzipped shards (--gzip); pretraining-data: "
        f"{args.data_shards} shards, {m.data.get('subword')}, --max-seq-length "
        f"{args.max_seq_length}, --max-predictions-per-seq {args.max_predictions_per_seq}, "
        f"--dupe-factor {args.dupe_factor} (recipe README: CC-100 128/19/5, Wikipedia "
        "512/76/30), whole-word masking",
        f"train-vocab counts the MeCab words of a {args.vocab_sample_sentences:,}-sentence "
        "sample of this corpus (the recipe samples Wikipedia only); sample-sentences and the "
        "one-worker WordPiece training after the counting are not included",
        "shuffle: the bytes through Reshuffle/GroupByKey, measured on the sample (pages, "
        "documents, token codes × dupe factor, records); Beam's own per-element work "
        "(encoding, shuffle I/O: ~10 % in the README benchmarks) is not in the rates; "
        "MB = 10^6 bytes, GB = 10^9 bytes",
    ]


def _warnings(m: _Measured, proj: costs.Projection, notes: list[str]) -> list[str]:
    warnings = list(notes)
    memory = costs.memory_warning(proj.machine)
    if memory:
        warnings.append(memory)
    if m.kind != m.detected:
        warnings.append(f"--kind {m.kind}, but the sample looks like {_KINDS[m.detected]}")
    if len(m.corpus.documents) < 20:
        warnings.append(f"the sample has only {len(m.corpus.documents)} documents: the rates "
                        "are rough; use a larger --sample-mb")
    for stage in proj.stages:
        busy = stage.wall_hours - proj.startup_minutes / 60
        for phase in stage.phases:
            if phase.cores < proj.cores and phase.wall_hours > max(busy / 2, 1 / 6):
                fix = ("split the input into more files" if phase.name == "read"
                       else "write more shards (--num-shards)")
                warnings.append(
                    f"{stage.name}: '{phase.name}' can use only {phase.cores} core(s) and "
                    f"takes {_duration(phase.wall_hours)} of the job's {_duration(busy)}: "
                    f"{fix}")
    return warnings


def _load_vocab(args) -> tuple[list[str], str, list[str]]:
    """The vocabulary tokens, the subword kind and notes."""
    from apache_beam.io.filesystems import FileSystems

    if args.vocab is None:
        if args.subword == "wordpiece":
            raise ValueError("--subword wordpiece needs --vocab DIR_OR_FILE")
        return character_vocab(), "character", [
            "no --vocab: pretraining-data was measured with the character vocabulary (special "
            "tokens + the 7,012 unidic-lite characters); pass --vocab DIR for a WordPiece "
            "vocabulary (fewer tokens per character, fewer instances)"]
    path = args.vocab if args.vocab.endswith(".txt") else posixpath.join(args.vocab, "vocab.txt")
    with FileSystems.open(path) as f:
        text = f.read().decode("utf-8")
    vocab = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    return vocab, args.subword or "wordpiece", []


def _with_shards(args, kind: str) -> argparse.Namespace:
    """``args`` with the shard counts' defaults for ``kind`` filled in."""
    corpus_shards = args.corpus_shards or _CORPUS_SHARDS[kind]
    return argparse.Namespace(**{**vars(args), "corpus_shards": corpus_shards,
                                 "data_shards": args.data_shards or corpus_shards})


def _measure(path: str, args, vocab: list[str], subword: str) -> _Measured:
    """Reads the sample of ``path`` and measures the three stages on it."""
    _progress(f"reading the first {args.sample_mb:g} MB of {path} ...")
    sample = read_sample(path, max(1, int(args.sample_mb * MB)))
    detected = detect_kind(sample.lines)
    kind = detected if args.kind == "auto" else args.kind
    corpus = _measure_corpus(sample, kind, MecabDictionary(args.mecab_dict))
    vocab_m = _measure_vocab(corpus.documents)
    data = _measure_pretraining(corpus, vocab, subword, args)
    data["subword"] = subword
    return _Measured(kind, detected, sample, corpus, vocab_m, data)


def estimate(args) -> dict:
    """Measures the stages on a sample of ``args.input`` and projects the whole run.

    Args:
      args: the parsed command line (see :func:`make_parser`).

    Returns:
      The estimate as a JSON-ready dict: input, sample, cluster, stages (projected
      and measured), totals, prices, assumptions and warnings.

    Raises:
      FileNotFoundError: a pattern matches no file.
      ValueError: an unknown machine type, a bad vocabulary, or a sample that gives
        no document.
    """
    machine = costs.machine_type(args.machine_type)
    files = _match(args.input)
    vocab, subword, notes = _load_vocab(args)
    m = _measure(files[0][0], args, vocab, subword)
    args = _with_shards(args, m.kind)
    compressed = sum(size for _, size in files)
    input_mb = args.project_mb or compressed * m.sample.ratio / MB
    rates = _rates(m, input_mb, len(files), args)
    proj = costs.projection(rates, input_mb, args.workers, machine, args.disk_gb,
                            ssd=args.ssd, startup_minutes=args.startup_minutes,
                            core_speed=args.core_speed)
    report = {"kind": m.kind, "detected_kind": m.detected, "input": {
        "patterns": list(args.input), "files": len(files), "compressed_mb": compressed / MB,
        "compression": m.sample.compression, "decompression_ratio": m.sample.ratio,
        "ratio_measured_on_mb": m.sample.ratio_bytes / MB,
        "ratio_whole_file": m.sample.whole_file, "projected_mb": input_mb,
        "projected_mb_given": args.project_mb is not None}}
    report["sample"] = {
        "path": m.sample.path, "mb": m.sample.nbytes / MB, "lines": len(m.sample.lines),
        "pages": m.corpus.pages, "documents": len(m.corpus.documents),
        "sentences": m.vocab.sentences, "corpus_mb": m.corpus.output_bytes / MB,
        "tokens": m.data["tokens"], "instances": m.data["instances"]}
    report.update(proj.to_dict())
    _stage_details(m, rates, report["stages"])
    report["assumptions"] = _assumptions(m, proj, args)
    report["warnings"] = _warnings(m, proj, notes)
    return report


# ----------------------------------------------------------------------------- printing


def _num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) < 0.001:
        return "<0.001"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.2g}"


def _usd(x: float) -> str:
    if 0 < x < 0.0001:
        return "<0.0001"
    return f"{x:,.2f}" if x >= 0.01 or x == 0 else f"{x:.4f}"


def _price(x: float) -> str:
    return "$" + f"{x:.6f}".rstrip("0").rstrip(".")


def _duration(hours: float) -> str:
    seconds = round(hours * 3600)
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned first column, right-aligned others."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(cells).rstrip()

    return [line(header)] + [line(r) for r in rows]


def _header(r: dict) -> list[str]:
    i, s, c = r["input"], r["sample"], r["cluster"]
    ratio = ("" if i["compression"] == "none" else
             f", {i['compression']} × {i['decompression_ratio']:.2f} (measured on "
             + ("the whole file)" if i["ratio_whole_file"]
                else f"{i['ratio_measured_on_mb']:.1f} MB)"))
    found = f"{s['pages']} pages → " if s["pages"] is not None else ""
    mt = c["machine_type"]
    return [
        f"bertjp estimate: {_KINDS[r['kind']]}"
        + (" (detected)" if r["kind"] == r["detected_kind"] else " (--kind)"),
        f"input    {i['files']} file(s), {_num(i['compressed_mb'])} MB{ratio}"
        + (f"; projected for {_num(i['projected_mb'])} MB (--project-mb)"
           if i["projected_mb_given"] else f" = {_num(i['projected_mb'])} MB to process"),
        f"sample   first {s['mb']:.2f} MB of {s['path']}: {found}{s['documents']:,} documents, "
        f"{s['sentences']:,} sentences, {s['corpus_mb']:.2f} MB of corpus, "
        f"{s['tokens']:,} tokens, {s['instances']:,} instances",
        f"cluster  {c['workers']} × {mt['name']} ({mt['vcpus']} vCPU, {mt['memory_gb']:g} GB) "
        f"= {c['sdk_processes']} SDK processes, {c['disk_gb']:g} GB {c['disk_type']} each",
    ]


def _stage_table(r: dict) -> list[str]:
    rows = []
    for s in r["stages"]:
        rate = s["measured"]["mb_per_s_per_core"]
        rows.append([s["name"], _num(s["input_mb"]), _num(s["output_mb"]),
                     _num(rate) if rate else "-", _num(s["core_hours"]),
                     _duration(s["wall_hours"]), _num(s["worker_hours"]),
                     _usd(s["cost"]["total"])])
    t = r["totals"]
    rows.append(["total", "", "", "", _num(t["core_hours"]), _duration(t["wall_hours"]),
                 _num(t["worker_hours"]), _usd(t["cost"]["total"])])
    return _table(["stage", "input MB", "output MB", "MB/s/core", "core-h", "wall",
                   "worker-h", "cost USD"], rows)


def _phase_table(r: dict) -> list[str]:
    rows = []
    for s in r["stages"]:
        per_mb = s["measured"]["seconds_per_mb"]
        for n, p in enumerate(s["phases"]):
            rows.append([s["name"] if n == 0 else "", p["name"], _num(per_mb[p["name"]]),
                         str(p["cores"]), _num(p["core_hours"]), _duration(p["wall_hours"])])
    return _table(["phase", "", "CPU s/MB", "cores", "core-h", "wall"], rows)


def _cost_table(r: dict) -> list[str]:
    rows = [[s["name"], *(_usd(s["cost"][k]) for k in ("vcpu", "memory", "disk")),
             _num(s["shuffle_gb"]), _usd(s["cost"]["shuffle"]), _usd(s["cost"]["total"])]
            for s in r["stages"]]
    t = r["totals"]["cost"]
    rows.append(["total", *(_usd(t[k]) for k in ("vcpu", "memory", "disk")),
                 _num(sum(s["shuffle_gb"] for s in r["stages"])), _usd(t["shuffle"]),
                 _usd(t["total"])])
    return _table(["cost USD", "vCPU", "memory", "disk", "shuffle GB", "shuffle", "total"],
                  rows)


def _details(r: dict) -> list[str]:
    corpus, vocab, data = r["stages"]
    rate = data["measured"]["instances_per_s_per_core"]
    return [
        f"{corpus['name']}: writes {_num(corpus['written_gzip_mb'])} MB of gzipped corpus",
        f"train-vocab: {_num(vocab['sentences'])} sentences ({_num(vocab['input_mb'])} MB) "
        "counted",
        f"pretraining-data: {_num(rate or 0)} instances/s per core, "
        f"{_num(data['instances_per_corpus_mb'])} instances per corpus MB → "
        f"{_num(data['instances'])} instances of {_num(data['bytes_per_record'])} bytes; "
        f"writes {_num(data['written_gzip_mb'])} MB of gzipped TFRecords",
    ]


def render(report: dict) -> str:
    """The estimate as text: header, stage table, phases, costs, assumptions, warnings."""
    out = [*_header(report), "", *_stage_table(report), "", *_details(report), "",
           *_phase_table(report), "", *_cost_table(report), "", "assumptions:"]
    out += [f"  - {a}" for a in report["assumptions"]]
    if report["warnings"]:
        out += ["", "warnings:", *(f"  - {w}" for w in report["warnings"])]
    return "\n".join(out)


# ----------------------------------------------------------------------------- command line


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertjp estimate", allow_abbrev=False,
        description="Measure each stage (corpus, train-vocab, pretraining-data) on a sample "
        "of the real input, in this process, and project worker-hours, wall time and cost "
        "of the whole input on Dataflow, stating the prices and assumptions used.",
        epilog="Example: bertjp estimate --input gs://B/dumps/jawiki-*-cirrussearch-content"
        ".json.gz --vocab gs://B/tokenizers/wordpiece_unidic_lite --workers 32 "
        "--machine-type n1-standard-4")
    _add_input_arguments(parser.add_argument_group("input and sample"))
    _add_cluster_arguments(parser.add_argument_group("cluster and prices"))
    _add_job_arguments(parser.add_argument_group("the jobs being estimated"))
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the whole estimate as JSON")
    out.add_argument("--verbose", action="store_true", help="show the traceback of an error")
    return parser


def _add_input_arguments(group) -> None:
    group.add_argument("--input", nargs="+", action="extend", required=True, metavar="GLOB",
                       help="the raw input: local paths or gs:// URLs, globs allowed; "
                       ".gz/.bz2/.xz are decompressed; the sample comes from the first file")
    group.add_argument("--kind", choices=("auto", "wiki", "cc100"), default="auto",
                       help="wiki: a Cirrussearch dump; cc100: CC-100 text (default: auto, "
                       "from the first line)")
    group.add_argument("--sample-mb", type=_positive(float), default=4.0, metavar="MB",
                       help="decompressed MB of the first file to measure on (default: 4)")
    group.add_argument("--project-mb", type=_positive(float), default=None, metavar="MB",
                       help="project for this many decompressed MB instead of the matched "
                       "files' size × the sample's decompression ratio (e.g. 74300 for "
                       "CC-100 ja, measured on a local sample of it)")


def _add_cluster_arguments(group) -> None:
    group.add_argument("--workers", type=_positive(int), default=32, metavar="N",
                       help="Dataflow workers, --num_workers (default: 32)")
    group.add_argument("--machine-type", default="n1-standard-4", metavar="T",
                       help="worker machine type, e.g. n1-standard-4 (default), n2-standard-8, "
                       "n1-highmem-4, e2-standard-4, c2-standard-8")
    group.add_argument("--disk-gb", type=float, default=50.0, metavar="GB",
                       help="persistent disk per worker, --disk_size_gb (default: 50)")
    group.add_argument("--ssd", action="store_true", help="price SSD persistent disk")
    group.add_argument("--core-speed", type=_positive(float), default=1.0, metavar="FACTOR",
                       help="a Dataflow vCPU's speed relative to this machine's core "
                       "(default: 1.0; e.g. 0.7 for two processes per physical core)")
    group.add_argument("--startup-minutes", type=float, default=costs.STARTUP_MINUTES,
                       metavar="MIN", help="fixed start-up of each job (default: 4)")


def _add_job_arguments(group) -> None:
    group.add_argument("--corpus-shards", type=_positive(int), default=None, metavar="N",
                       help="corpus shards (default: 8 for wiki, 64 for cc100, as the recipe)")
    group.add_argument("--data-shards", type=_positive(int), default=None, metavar="N",
                       help="pretraining-data shards (default: as many as corpus shards)")
    group.add_argument("--mecab-dict", default="unidic-lite", metavar="DICT",
                       help="wiki sentence splitting: unidic-lite (default), ipadic or a "
                       "dictionary directory")
    group.add_argument("--vocab-sample-sentences", type=_positive(int), default=10_000_000,
                       metavar="N", help="tokenizer-training sample (default: 10,000,000, "
                       "the recipe's)")
    group.add_argument("--vocab", metavar="DIR_OR_FILE", default=None,
                       help="tokenizer directory or vocab.txt for pretraining-data (default: "
                       "the character vocabulary, with a note)")
    group.add_argument("--subword", choices=("wordpiece", "character"), default=None,
                       help="default: wordpiece with --vocab, else character")
    group.add_argument("--dupe-factor", type=_positive(int), default=10, metavar="N",
                       help="default: 10, the reference flag's (recipe README: 5 for CC-100, "
                       "30 for Wikipedia)")
    group.add_argument("--max-seq-length", type=_positive(int), default=128, metavar="N",
                       help="default: 128 (recipe README: 128 CC-100, 512 Wikipedia)")
    group.add_argument("--max-predictions-per-seq", type=_positive(int), default=20,
                       metavar="N", help="default: 20 (recipe README: 19 CC-100, 76 Wikipedia)")
    group.add_argument("--bucket-documents", type=_positive(int), default=256, metavar="N",
                       help="documents per random-next bucket (default: 256)")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``bertjp estimate``; prints the estimate (text or ``--json``) on stdout."""
    args = make_parser().parse_args(argv)
    report = estimate(args)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render(report))
    return 0
