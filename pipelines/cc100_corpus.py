"""``bertjp cc100-corpus``: CC-100 ``ja.txt.xz`` → document shards in the corpus format.

The reference's ``merge_split_corpora.py`` as a Beam job: each line is
whitespace-normalised (strip, every run of Unicode whitespace → one space), an
empty line ends a document, and documents are distributed over N balanced shards
by a seeded hash of their position in their file. CC-100 is not sentence-split
(the reference does none): its lines serve as sentences.

    ReadFiles(ReadCc100DocumentsFn) → WriteShards   + dead letters + manifest

Unlike the reference, a document never continues from one input file into the
next, any N works, and the first document can land in any shard.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import posixpath
import uuid
from typing import Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from bertjp.corpus import BadLine, ReferenceSplitter, format_document, group_cc100_documents
from bertjp.defaults import GZIP_LEVEL
from bertjp.sharding import stable_key
from bertjp.streams import LineTooLong
from bertjp.text import normalize_cc100_line
from pipelines import common, runner
from pipelines.io import InputLines, ReadFileFn, expand_inputs
from pipelines.shards import HashingWriter
from pipelines.stats import STATS, TalliedParDo, TallyDoFn, dead_letter
from pipelines.transforms import ReadFiles

__all__ = ["Cc100CorpusConfig", "build", "run"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cc100CorpusConfig(common.CorpusConfig):
    """Configuration of ``bertjp cc100-corpus`` (see :class:`common.CorpusConfig`).

    Attributes:
      reference_sharding: assign lines to files exactly as ``merge_split_corpora.py``
        does (one sequential worker) instead of the balanced, seeded hash.
    """

    num_shards: int = 64
    reference_sharding: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.reference_sharding:
            ReferenceSplitter(self.num_shards, self.seed)  # fails now if the reference would


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


class _ReferenceOutput:
    """One output file of the reference mode: writes lines, counts and hashes them."""

    def __init__(self, path: str, compress: bool, temp_suffix: str):
        self.path = path
        # Renamed to ``path`` when complete: no partial file under the final name.
        self._temp = path + temp_suffix
        self._file = FileSystems.create(self._temp,
                                        compression_type=CompressionTypes.UNCOMPRESSED)
        self._raw = HashingWriter(self._file)
        self._gzip = (gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0,
                                    compresslevel=GZIP_LEVEL) if compress else None)
        self.content = hashlib.sha256()
        self.lines = self.documents = self.size = 0
        self._open_document = False

    def write(self, line: str) -> None:
        data = line.encode("utf-8") + b"\n"
        (self._gzip or self._raw).write(data)
        self.content.update(data)
        self.size += len(data)
        self.lines += 1
        if line:
            self._open_document = True
        elif self._open_document:
            self.documents += 1
            self._open_document = False

    def close(self, shard: int) -> dict:
        if self._gzip:
            self._gzip.close()
        self._file.close()
        FileSystems.rename([self._temp], [self.path])
        return {"path": self.path, "role": "shard", "shard": shard,
                "records": self.documents + self._open_document, "lines": self.lines,
                "content_bytes": self.size, "content_sha256": self.content.hexdigest(),
                "bytes": self._raw.size, "sha256": self._raw.sha256.hexdigest()}


class ReferenceShardFn(TallyDoFn):
    """``merge_split_corpora.py`` in one DoFn: reads every input in order, writes N files.

    Line for line what the reference writes, blank lines and its gluing of
    documents across input files included; only lines that are not valid UTF-8
    (where the reference crashes) go to the dead letters instead.
    """

    def __init__(self, config: Cc100CorpusConfig):
        super().__init__()
        self._config = config

    def process(self, paths):
        config = self._config
        splitter = ReferenceSplitter(config.num_shards, config.seed)
        temp_suffix = f".tmp-{uuid.uuid4().hex[:12]}"
        outputs = [_ReferenceOutput(p, config.gzip, temp_suffix) for p in config.shard_paths]
        for path in paths:
            with InputLines(path, config.max_line_bytes) as lines:
                for lineno, raw in lines:
                    bad = _bad_line(raw)
                    if bad:
                        self.count(f"lines_dropped.{bad[0]}")
                        yield dead_letter(path, lineno, *bad,
                                          raw.head if isinstance(raw, LineTooLong) else raw)
                        continue
                    text = raw.decode("utf-8")
                    for part in text.removesuffix("\r").split("\r"):
                        line = normalize_cc100_line(part)
                        outputs[splitter.assign(line)].write(line)
            self.count("lines_read", lines.count)
            yield beam.pvalue.TaggedOutput(STATS, ("input", lines.stats))
        for shard, out in enumerate(outputs):
            stats = out.close(shard)
            self.count("documents_in", stats["records"])
            self.count("documents_out", stats["records"])
            self.count("sentences.kept", stats["lines"] - stats["records"])
            yield beam.pvalue.TaggedOutput(STATS, ("output", stats))


def _bad_line(raw) -> tuple[str, str] | None:
    if isinstance(raw, LineTooLong):
        return "line_too_long", f"{raw.size} bytes"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return "invalid_utf8", f"{err.reason} at byte {err.start}"
    return None


def _build_reference(pipeline, config: Cc100CorpusConfig):
    paths = tuple(expand_inputs(config.inputs))
    done = (
        pipeline
        | "Inputs" >> beam.Create([paths])
        | "MergeSplit" >> TalliedParDo(ReferenceShardFn(config))
    )
    return common.write_outputs(config, "cc100-corpus", None, stats=[done.stats],
                                dead=[done.dead], extra_header={"inputs_in_order": paths})


def build(pipeline: beam.Pipeline, config: Cc100CorpusConfig):
    """Adds the cc100-corpus job to ``pipeline``; returns the manifest PCollection."""
    if config.reference_sharding:
        return _build_reference(pipeline, config)
    reader = ReadCc100DocumentsFn(config)
    docs = pipeline | "ReadDocuments" >> ReadFiles(config.inputs, reader)
    return common.write_outputs(config, "cc100-corpus", docs.main,
                                stats=[docs.stats], dead=[docs.dead])


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
    parser.add_argument(
        "--reference-sharding", action="store_true",
        help="assign lines to shards exactly as merge_split_corpora.py does (Python's random "
        "seeded with --seed, 0 by default; input order kept; documents glued across input "
        "files as it does), reading all inputs in order on one worker. Works on any "
        "corpus-format input, e.g. a --reference-order wiki corpus. Refuses an N where the "
        "reference crashes")
    return parser


def config_from_args(args) -> Cc100CorpusConfig:
    return Cc100CorpusConfig(**common.corpus_config_kwargs(args, default_stem="corpus"),
                             reference_sharding=args.reference_sharding)


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs ``bertjp cc100-corpus``; returns the manifest."""
    return runner.run_command(make_parser(), argv, config_from_args, build,
                              expected="is it CC-100 text (one paragraph per line, an empty "
                              "line after each document)?")
