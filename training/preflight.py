"""Check pretraining-data records against an experiment before spending TPU time.

``bertjp pretraining-data`` writes a manifest next to its shards; :func:`check`
compares it with a Model Garden ``ExperimentConfig`` (see ``training.configs``) and
returns one message per mismatch, each naming both values and the flag that fixes it.
"""

from __future__ import annotations

import hashlib

from bertjp import manifest as manifest_lib
from bertjp.manifest import Manifest, ManifestError, RecordsSpec, records_spec
from training import configs

__all__ = ["check", "check_or_raise", "describe", "file_problems", "init_problems",
           "load_manifest", "manifest_path", "match_files", "split_patterns"]

COMPRESSED = "tfrecord_compressed"
MANIFEST_SUFFIX = ".manifest.json"


def manifest_path(path: str) -> str:
    """The manifest of ``path``: the path itself when it ends in ``.json``, else
    ``PREFIX.manifest.json`` (``path`` is then the records' ``--output`` prefix)."""
    path = str(path)
    return path if path.endswith(".json") else path + MANIFEST_SUFFIX


def load_manifest(path: str) -> Manifest:
    """Reads a manifest from a local or ``gs://`` path (or records prefix), validated by
    the schema (:mod:`bertjp.manifest`).

    Raises:
      FileNotFoundError: when there is no manifest there.
      ValueError: (a ``ManifestError``) when the file is not a manifest, naming the field.
    """
    from apache_beam.io.filesystems import FileSystems

    path = manifest_path(path)
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"no manifest at {path} (written by bertjp pretraining-data "
                                f"as PREFIX{MANIFEST_SUFFIX})")
    with FileSystems.open(path) as f:
        return manifest_lib.loads(f.read(), path)


def _as_manifest(manifest: Manifest | dict) -> Manifest:
    """A :class:`Manifest`; a JSON object (e.g. what a job's ``run()`` returns) is validated."""
    if isinstance(manifest, Manifest):
        return manifest
    return manifest_lib.from_json(manifest, "the manifest")


def shard_paths(manifest: Manifest | dict) -> list[str]:
    """Paths of the record shards listed in a manifest (``outputs`` with role ``shard``)."""
    manifest = _as_manifest(manifest)
    rows = manifest.summary.shards if manifest.summary else None
    return [o.path for o in manifest.shards()] or [r.path for r in rows or []]


def _data_named(seq_length: int, predictions: int | None = None) -> str | None:
    for name, spec in configs.DATA.items():
        if spec.seq_length == seq_length and predictions in (None, spec.max_predictions_per_seq):
            return name
    return None


def _data_label(data_config) -> str:
    name = _data_named(data_config.seq_length, data_config.max_predictions_per_seq)
    return f" (data {name!r})" if name else ""


def _seq_problem(spec: RecordsSpec, data_config) -> list[str]:
    have = spec.max_seq_length
    want = data_config.seq_length
    if have == want:
        return []
    fix = f"make the records with --max-seq-length {want}"
    other = _data_named(have)
    if other and _data_named(want):  # the experiment uses a stage's seq length
        fix += f" or train with --data {other}"
    else:
        fix += f" or train with --seq-length {have}"
    return [f"seq length: the records have {have}, the experiment expects {want}"
            f"{_data_label(data_config)}; {fix}"]


def _predictions_problem(spec: RecordsSpec, data_config) -> list[str]:
    have = spec.max_predictions_per_seq
    want = data_config.max_predictions_per_seq
    if have == want:
        return []
    return [f"max predictions: the records have {have} per sequence, the experiment expects "
            f"{want}{_data_label(data_config)}; make the records with "
            f"--max-predictions-per-seq {want} or train with --max-predictions-per-seq {have}"]


def _feature_names_problem(spec: RecordsSpec, data_config) -> list[str]:
    have = spec.v2_feature_names
    want = bool(data_config.use_v2_feature_names)
    if have == want:
        return []
    names = {True: "v2 names (input_word_ids, input_type_ids)",
             False: "v1 names (input_ids, segment_ids)"}
    fix = ("make the records without --v1-feature-names" if want
           else "make the records with --v1-feature-names")
    return [f"feature names: the records use {names[have]}, the experiment reads "
            f"{names[want]}; {fix}"]


def _compression_problems(spec: RecordsSpec, data_config) -> list[str]:
    problems = []
    if data_config.file_type != COMPRESSED:
        problems.append(f"compression: the experiment reads file_type "
                        f"{data_config.file_type!r}, the records are gzip TFRecords; set "
                        f"task.train_data.file_type {COMPRESSED}")
    plain = [p for p in spec.shard_paths if not p.endswith(".gz")]
    if plain:
        problems.append(f"compression: {len(plain)} shard file(s) are not gzip (.gz), e.g. "
                        f"{plain[0]}; the experiment reads file_type {COMPRESSED}; make the "
                        "records with bertjp pretraining-data (it writes .tfrecord.gz)")
    return problems


def _vocab_size_problem(spec: RecordsSpec, config) -> list[str]:
    have = spec.vocab_size
    want = config.task.model.encoder.bert.vocab_size
    if have == want:
        return []
    subword = spec.subword
    return [f"vocab size: the records were made with a {have}-token vocabulary "
            f"(subword {subword!r}), the experiment's encoder has {want}; train with "
            "--vocab set to the vocabulary the records were made with"]


def vocab_sha256(vocab_dir: str) -> str:
    """sha256 of a vocabulary as ``bertjp pretraining-data`` records it (one token a line)."""
    tokens = configs.vocab_tokens(vocab_dir)
    return hashlib.sha256("".join(t + "\n" for t in tokens).encode("utf-8")).hexdigest()


def _vocab_checksum_problem(spec: RecordsSpec, vocab_dir: str | None) -> list[str]:
    have = spec.vocab_sha256
    if vocab_dir is None or not have:
        return []
    want = vocab_sha256(vocab_dir)
    if have == want:
        return []
    return [f"vocab checksum: {vocab_dir} (sha256 {want[:12]}...) is not the vocabulary the "
            f"records were made with (sha256 {have[:12]}...); pass the --vocab given to "
            "bertjp pretraining-data"]


def _shard_count_problem(spec: RecordsSpec, num_hosts: int) -> list[str]:
    count = len(spec.shard_paths)
    if count >= num_hosts:
        return []
    return [f"shards: the records have {count} shard file(s), fewer than the {num_hosts} "
            f"hosts (each host reads whole files); make the records with --num-shards "
            f"{num_hosts} or a multiple of it"]


def _instances_problem(spec: RecordsSpec) -> list[str]:
    instances = spec.instances
    if instances > 0:
        return []
    return ["instances: the records hold 0 instances; check the corpus given to "
            "bertjp pretraining-data (--input) and its manifest's dropped counts"]


def _validation_problem(config) -> list[str]:
    train, valid = config.task.train_data, config.task.validation_data
    fields = ("seq_length", "max_predictions_per_seq", "use_v2_feature_names", "file_type")
    differ = [f"{f} {getattr(valid, f)!r} vs {getattr(train, f)!r}" for f in fields
              if getattr(valid, f) != getattr(train, f)]
    if not differ or valid.input_path not in ("", train.input_path):
        return []
    return [f"validation data: reads the same records as training but differs in "
            f"{', '.join(differ)}; build the experiment with the same data settings"]


def check(manifest: Manifest | dict, config, num_hosts: int = 1,
          vocab_dir: str | None = None) -> list[str]:
    """Mismatches between a pretraining-data manifest and an experiment config.

    Args:
      manifest: from :func:`load_manifest` (or its JSON object).
      config: an ``ExperimentConfig`` (e.g. from ``training.configs.experiment_config``).
      num_hosts: hosts that read the records; each needs at least one shard file.
      vocab_dir: when given, its vocab.txt must be the one the records were made with.

    Returns:
      One message per problem (seq length, predictions, feature names, compression,
      vocab size, vocab checksum, shard count, instances); empty when all is fine.
    """
    try:
        spec = records_spec(manifest)
    except ManifestError as err:
        return [f"manifest: {err}"]
    data_config = config.task.train_data
    return [
        *_seq_problem(spec, data_config),
        *_predictions_problem(spec, data_config),
        *_feature_names_problem(spec, data_config),
        *_compression_problems(spec, data_config),
        *_validation_problem(config),
        *_vocab_size_problem(spec, config),
        *_vocab_checksum_problem(spec, vocab_dir),
        *_shard_count_problem(spec, num_hosts),
        *_instances_problem(spec),
    ]


def init_problems(manifest: Manifest | dict, *, init_dir: str, vocab_size: int,
                  max_position_embeddings: int, vocab_dir: str | None = None) -> list[str]:
    """Whether records fit the model that ``--init-from`` continues.

    Args:
      manifest: the records' manifest.
      init_dir: the ``--init-from`` value (named in the messages).
      vocab_size: the model's vocabulary size.
      max_position_embeddings: the model's position table.
      vocab_dir: the model's vocabulary (a directory with vocab.txt), when it has one.

    Returns:
      One message per mismatch, each naming the flag that fixes it: another vocabulary
      (sha256 of the model's vocab.txt against the manifest's ``vocab_sha256``, or the
      sizes when the model has no vocab.txt), and records longer than the model's
      positions.
    """
    try:
        spec = records_spec(manifest)
    except ManifestError as err:
        return [f"manifest: {err}"]
    problems = []
    where = vocab_dir or init_dir
    if vocab_dir is not None and spec.vocab_sha256:
        want = vocab_sha256(vocab_dir)
        if want != spec.vocab_sha256:
            problems.append(
                f"vocabulary: the records were made with another vocabulary (sha256 "
                f"{spec.vocab_sha256[:12]}..., {spec.vocab_size} tokens) than the --init-from "
                f"model's {vocab_dir} (sha256 {want[:12]}..., {vocab_size} tokens); make the "
                f"records with --vocab {where}")
    elif spec.vocab_size != vocab_size:
        problems.append(
            f"vocabulary: the records were made with a {spec.vocab_size}-token vocabulary, "
            f"the --init-from model has {vocab_size} tokens; make the records with the "
            f"model's vocabulary (--vocab {where})")
    if spec.max_seq_length > max_position_embeddings:
        problems.append(
            f"seq length: the records have {spec.max_seq_length}, more than the --init-from "
            f"model's {max_position_embeddings} max positions; make the records with "
            f"--max-seq-length {max_position_embeddings} (or less)")
    return problems


def check_or_raise(manifest: Manifest | dict, config, num_hosts: int = 1,
                   vocab_dir: str | None = None) -> None:
    """:func:`check`, raising when there are problems.

    Raises:
      ValueError: listing every problem on one line, separated by ``" | "``.
    """
    problems = check(manifest, config, num_hosts=num_hosts, vocab_dir=vocab_dir)
    if problems:
        raise ValueError(f"preflight found {len(problems)} problem(s) with the records: "
                         + " | ".join(problems))


def split_patterns(values) -> list[str]:
    """File patterns of one or several flag values, each of which may hold several
    separated by commas (as Model Garden's ``input_path`` splits them); in order,
    without blanks or repeats."""
    if isinstance(values, str):
        values = [values]
    patterns: list[str] = []
    for value in values or []:
        for pattern in str(value).split(","):
            pattern = pattern.strip()
            if pattern and pattern not in patterns:
                patterns.append(pattern)
    return patterns


def match_files(patterns: list[str], flag: str) -> tuple[dict[str, int], list[str]]:
    """``({path: size in bytes}, problems)`` of the files ``patterns`` match (local or
    ``gs://``, through Beam's ``FileSystems``); a pattern that matches nothing, or that
    cannot be listed, is a problem naming ``flag``."""
    from apache_beam.io.filesystem import BeamIOError
    from apache_beam.io.filesystems import FileSystems

    matched: dict[str, int] = {}
    problems = []
    for pattern in patterns:
        try:
            [result] = FileSystems.match([pattern])
        except BeamIOError as e:
            problems.append(f"{flag} {pattern}: cannot list the files ({e})")
            continue
        if not result.metadata_list:
            problems.append(f"{flag} {pattern} matches no files")
        matched.update((m.path, m.size_in_bytes) for m in result.metadata_list)
    return matched, problems


def file_problems(groups: list[tuple[str, dict, list[str]]], flag: str) -> list[str]:
    """Whether the files some patterns match are exactly their manifest's shards.

    Args:
      groups: ``(manifest path, manifest, patterns)``: the patterns that read the
        records of one manifest.
      flag: the option the patterns came from (named in the messages).

    Returns:
      One message per problem: a pattern that matches nothing, a matched file the
      manifest does not list (another run's), a listed shard that is not matched
      (missing: only for globs; shards named one by one may be a subset), a size that
      differs from the manifest's (truncated or rewritten).
    """
    from bertjp import outputs

    problems = []
    for path, manifest, patterns in groups:
        matched, unmatched = match_files(patterns, flag)
        problems += unmatched
        if matched:
            # Shards named one by one (no glob) may be a deliberate subset of the manifest's.
            subset = not any(outputs.has_glob(p) for p in patterns)
            problems += [f"files: {p}" for p in outputs.manifest_problems(
                matched, manifest, path, subset=subset)]
    return problems


def describe(manifest: Manifest | dict) -> str:
    """One line about the records: instances, shards, seq, predictions, vocabulary."""
    spec = records_spec(manifest)
    names = "v2" if spec.v2_feature_names else "v1"
    return (f"{spec.instances:,} instances in {len(spec.shard_paths)} shard(s), seq "
            f"{spec.max_seq_length}, {spec.max_predictions_per_seq} predictions, vocab "
            f"{spec.vocab_size} ({spec.subword}), {names} feature names")
