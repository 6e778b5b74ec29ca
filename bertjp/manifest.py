"""The manifest every job writes beside its outputs: one typed schema for writers and readers.

A manifest is a JSON object (``PREFIX.manifest.json``, or ``DIR/manifest.json`` for a
tokenizer directory). This module is its only definition: the dataclasses below, a
``schema_version``, :func:`loads`/:func:`dumps` and validation that names the file and
the field when something is missing or of the wrong type. Jobs build a
:class:`Manifest` from what their pipeline counted (see :func:`summarize`); readers
(``bertjp validate``, ``inspect``, ``train`` preflight, the next stage's input check)
load it and use attributes, never string keys.

The JSON keys are those the manifests had before the schema existed; a manifest
written before ``schema_version`` (version 0) still loads.

``accounted`` is computed from independent counts: the records the readers counted
in, against the records the writers wrote (or, for pretraining data, the documents
that reached instance creation) plus the records dropped by reason — so it is false
when a stage loses records without counting them.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from bertjp import dataclass_json
from bertjp.dataclass_json import json_field

__all__ = [
    "SCHEMA_VERSION",
    "VALIDATE_FIELDS",
    "Documents",
    "InputFile",
    "Manifest",
    "ManifestError",
    "NotRecordsManifest",
    "OutputFile",
    "RecordsSpec",
    "Sentences",
    "ShardRow",
    "Summary",
    "dumps",
    "from_json",
    "loads",
    "records_spec",
    "summarize",
    "to_json",
]

SCHEMA_VERSION = 1


class ManifestError(ValueError):
    """A manifest that does not follow the schema; the message names the file and field."""


@dataclasses.dataclass(frozen=True)
class InputFile:
    """One input file: its size, SHA-256 and line count."""

    path: str
    bytes: int
    sha256: str
    lines: int


@dataclasses.dataclass(frozen=True)
class OutputFile:
    """One written file: a shard, the dead letters or a vocabulary.

    ``records`` are documents (corpus shards), instances (pretraining shards),
    sentences (a sample), dead letters or tokens (a vocabulary).
    """

    path: str
    role: str
    bytes: int
    records: int = 0
    lines: int = 0
    sha256: str = ""
    shard: int | None = None
    content_bytes: int | None = None
    content_sha256: str | None = None
    masked_tokens: int | None = None
    distinct_words: int | None = None
    special_tokens: int | None = None
    alphabet: int | None = None


@dataclasses.dataclass(frozen=True)
class Documents:
    """Records in, out and dropped by reason (``unit`` of the summary says what they are)."""

    in_: int = json_field("in", default=0)
    out: int = 0
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Sentences:
    """Sentences kept and filtered by reason."""

    kept: int
    filtered: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ShardRow:
    """One shard in the summary: its records, size and per-shard figures."""

    path: str
    bytes: int | None = None
    documents: int | None = None
    sentences: int | None = None
    instances: int | None = None
    masked_tokens: int | None = None


@dataclasses.dataclass(frozen=True)
class Summary:
    """The totals a person reads first."""

    documents: Documents = dataclasses.field(default_factory=Documents)
    dead_letters: int = 0
    accounted: bool = False
    unit: str | None = None
    sentences: Sentences | None = None
    lines_dropped: dict[str, int] | None = None
    shards: list[ShardRow] | None = None
    instances: int | None = None
    masked_tokens: int | None = None
    random_next: int | None = None
    tokens: int | None = None
    unk_tokens: int | None = None
    unk_rate: float | None = None
    nul_characters: int | None = None
    tokens_truncated: int | None = None
    alphabet_coverage: float | None = None
    warnings: list[str] | None = None

    @property
    def record_unit(self) -> str:
        return self.unit or "documents"


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A job's manifest. ``config`` is the job's configuration as it ran (its fields
    depend on the command; :meth:`require` reads one with a clear error)."""

    command: str = ""
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    summary: Summary | None = None
    outputs_prefix: str = ""
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    inputs: list[InputFile] = dataclasses.field(default_factory=list)
    outputs: list[OutputFile] = dataclasses.field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    seed: int | None = None
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    created: str = ""
    mecab_dictionary: dict[str, Any] | None = None
    vocab_size: int | None = None
    vocab_sha256: str | None = None
    inputs_in_order: list[str] | None = None
    replaced: list[str] | None = None
    source: str = dataclasses.field(default="", compare=False, repr=False)  # where read

    def shards(self) -> list[OutputFile]:
        """The shard outputs, in shard order."""
        shards = [o for o in self.outputs if o.role == "shard"]
        return sorted(shards, key=lambda o: (o.shard is None, o.shard or 0, o.path))

    def require(self, *keys: str) -> Any:
        """``config[keys[0]][keys[1]]...``, or a :class:`ManifestError` naming the file,
        the missing field and the command that wrote the manifest."""
        value: Any = self.config
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                where = ".".join(("config",) + keys)
                raise ManifestError(f"missing {where} in {self.source or 'the manifest'} "
                                    f"(written by `bertjp {self.command}`)")
            value = value[key]
        return value

    def with_(self, **changes) -> "Manifest":
        """A copy with some fields replaced."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class RecordsSpec:
    """What a ``pretraining-data`` manifest says about its records (see
    :func:`records_spec`): what training and ``bertjp validate`` check them against."""

    max_seq_length: int
    max_predictions_per_seq: int
    v2_feature_names: bool
    vocab_size: int
    vocab_sha256: str | None
    subword: str
    instances: int
    shards: list[OutputFile]
    shard_rows: list[ShardRow]

    @property
    def shard_paths(self) -> list[str]:
        """The shard files, from ``outputs`` or (older manifests) the summary's rows."""
        return [o.path for o in self.shards] or [r.path for r in self.shard_rows]


_RECORDS_FIELDS = ("config.instance.max_seq_length", "config.instance.max_predictions_per_seq",
                   "config.v2_feature_names", "vocab_size", "outputs", "summary.instances",
                   "summary.shards")


class NotRecordsManifest(ManifestError):
    """A manifest that is not a ``pretraining-data`` one (or lacks what records need).

    Attributes:
      source: the file.
      command: the command that wrote it, when it says.
      missing: ``(field, first missing part)`` pairs, e.g.
        ``("config.instance.max_seq_length", "config.instance")``.
    """

    def __init__(self, source: str, command: str | None, missing: list[tuple[str, str]]):
        self.source, self.command, self.missing = source, command, missing
        written = f"written by `bertjp {command}`" if command else "no command recorded"
        super().__init__(f"missing {', '.join(f for f, _ in missing)} in {source} ({written}); "
                         "is it a manifest written by bertjp pretraining-data?")


def _first_missing(data: Any, dotted: str) -> str | None:
    value, parts = data, dotted.split(".")
    for i, part in enumerate(parts):
        if not isinstance(value, dict) or part not in value:
            return ".".join(parts[:i + 1])
        value = value[part]
    return None


# What `bertjp validate` needs of a manifest: the instance shape, the vocabulary size and
# the records per shard.
VALIDATE_FIELDS = ("config.instance.max_seq_length", "config.instance.max_predictions_per_seq",
                   "vocab_size", "summary.shards")


def records_spec(manifest: Manifest | dict, source: str | None = None,
                 required: tuple[str, ...] = _RECORDS_FIELDS) -> RecordsSpec:
    """The records' facts of a ``pretraining-data`` manifest (a :class:`Manifest` or its
    JSON object).

    Raises:
      NotRecordsManifest: listing every missing field, naming the file and the command
        that wrote it (e.g. a corpus manifest given where records are expected).
      ManifestError: the manifest does not follow the schema.
    """
    if isinstance(manifest, Manifest):
        source = source or manifest.source or "the manifest"
        data = to_json(manifest)
    else:
        source, data = source or "the manifest", manifest
    if not isinstance(data, dict):
        raise ManifestError(f"{source} is not a JSON object (got {type(data).__name__})")
    missing = [(f, part) for f in required if (part := _first_missing(data, f))]
    if missing:
        command = data.get("command")
        raise NotRecordsManifest(source, command if isinstance(command, str) else None, missing)
    manifest = manifest if isinstance(manifest, Manifest) else from_json(data, source)
    instance = manifest.config["instance"]
    return RecordsSpec(
        max_seq_length=instance["max_seq_length"],
        max_predictions_per_seq=instance["max_predictions_per_seq"],
        v2_feature_names=bool(manifest.config.get("v2_feature_names", True)),
        vocab_size=manifest.vocab_size, vocab_sha256=manifest.vocab_sha256,
        subword=str(manifest.config.get("subword", "?")),
        instances=manifest.summary.instances or 0,
        shards=manifest.shards(), shard_rows=list(manifest.summary.shards or []))


def loads(text: str | bytes, source: str = "the manifest") -> Manifest:
    """Parses and validates a manifest (``source`` names the file in errors)."""
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManifestError(f"{source} is not a JSON manifest: {err}") from None
    return from_json(data, source)


# What every manifest of schema version 1 has (older ones, and hand-written ones without a
# schema_version, are read leniently: what they lack takes its default).
_REQUIRED_V1 = ("command", "config", "outputs_prefix", "counts", "inputs", "outputs",
                "summary.documents.in", "summary.documents.out", "summary.documents.dropped",
                "summary.dead_letters", "summary.accounted", "versions", "created")
_REQUIRED_OUTPUT_V1 = ("path", "role", "records", "lines", "bytes", "sha256")


def from_json(data: Any, source: str = "the manifest") -> Manifest:
    """Validates a manifest's JSON object (as :func:`to_json` gives it) into a Manifest."""
    if isinstance(data, dict):
        data = {"schema_version": 0, **data}
        version = data["schema_version"]
        if not isinstance(version, int) or isinstance(version, bool) or version > SCHEMA_VERSION:
            raise ManifestError(f"{source}: schema_version {version!r} is not one this bertjp "
                                f"reads (0 to {SCHEMA_VERSION}); upgrade bertjp")
        missing = [f for f in _REQUIRED_V1 if version >= 1 and _first_missing(data, f)]
        if version >= 1 and not missing and isinstance(data["outputs"], list):
            missing = [f"outputs[{i}].{f}" for i, o in enumerate(data["outputs"])
                       for f in _REQUIRED_OUTPUT_V1 if not isinstance(o, dict) or f not in o]
        if missing:
            raise ManifestError(f"{source}: no {missing[0]!r} (schema_version {version} "
                                "requires it)")
    manifest = dataclass_json.from_json(Manifest, data, "", source, ManifestError)
    return dataclasses.replace(manifest, source=source)


def dumps(manifest: Manifest) -> str:
    """The manifest as indented JSON (UTF-8 text, a final newline)."""
    return json.dumps(to_json(manifest), ensure_ascii=False, indent=2) + "\n"


def to_json(manifest: Manifest) -> dict:
    """The manifest as the JSON object it is written as."""
    return dataclass_json.to_json(manifest)


# --- building a summary from the pipeline's counts ----------------------------------------


def _by_prefix(counts: dict[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: v for k, v in counts.items() if k.startswith(prefix)}


def summarize(counts: dict[str, int], outputs: list[OutputFile], *, unit: str | None = None,
              records_in: str = "documents_in", records_out: str | None = None,
              by_design: dict[str, int] | None = None) -> Summary:
    """The summary of a job from its merged counts and written files.

    Args:
      counts: every counter the job's steps emitted, summed.
      outputs: the files written (shards, dead letters).
      unit: what a record is (``None``: documents).
      records_in: the counter of records read.
      records_out: the counter of records that reached the end of the job, or ``None``
        for the records in the written shards (counted by the writer).
      by_design: drops that are the job's purpose (a sample's ``not_sampled``), counted
        in the pipeline, added to ``dropped``.

    ``accounted`` is ``in == out + dropped``, each side counted by another step.
    """
    dropped = {**_by_prefix(counts, "dropped."), **(by_design or {})}
    shards = [o for o in outputs if o.role == "shard"]
    out = (sum(o.records for o in shards) if records_out is None
           else counts.get(records_out, 0))
    documents = Documents(in_=counts.get(records_in, 0), out=out, dropped=dropped)
    filtered = _by_prefix(counts, "sentences.filtered.")
    sentences = (Sentences(kept=counts.get("sentences.kept", 0), filtered=filtered)
                 if "sentences.kept" in counts or filtered else None)
    return Summary(
        documents=documents,
        dead_letters=sum(o.records for o in outputs if o.role == "dead_letter"),
        accounted=documents.in_ == documents.out + sum(dropped.values()),
        unit=unit,
        sentences=sentences,
        lines_dropped=_by_prefix(counts, "lines_dropped.") or None,
    )
