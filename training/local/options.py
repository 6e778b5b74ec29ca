"""The options of ``bertjp train local``: the flags, read once into :class:`LocalOptions`.

:func:`options_from_args` is the only place that reads the parsed arguments; the
config, the preflight and the run below :func:`~training.local.cli.main` take the
options object.
"""

from __future__ import annotations

import argparse
import dataclasses
import re

__all__ = [
    "DEFAULT_VALIDATION_STEPS",
    "ConfigOverrides",
    "LocalOptions",
    "build_config",
    "default_manifest_path",
    "options_from_args",
]

DEFAULT_VALIDATION_STEPS = 4
_SHARD_SUFFIX = re.compile(r"-(?:\*|[\d*?]+-of-[\d*?]+)\.tfrecord\.gz$")


@dataclasses.dataclass(frozen=True)
class ConfigOverrides:
    """Experiment settings given on the command line; None keeps
    :func:`training.configs.experiment_config`'s default (see ``--help``)."""

    global_batch_size: int | None = None
    seq_length: int | None = None
    max_predictions_per_seq: int | None = None
    learning_rate: float | None = None
    warmup_steps: int | None = None
    steps_per_loop: int | None = None
    checkpoint_interval: int | None = None
    summary_interval: int | None = None
    validation_interval: int | None = None
    max_to_keep: int | None = None

    def given(self) -> dict[str, int | float]:
        """The settings that were given, by ``experiment_config`` argument name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None}


@dataclasses.dataclass(frozen=True)
class LocalOptions:
    """Everything ``bertjp train local`` does is decided by these (see ``--help``).

    Attributes:
      inputs: the training shard patterns (``--input``, split on commas, no repeats).
      model_dir: checkpoints, summaries and ``params.yaml``.
      manifest: ``--manifest`` for every pattern; None: each pattern's own.
      vocab: vocabulary directory; None: the manifest's vocab size, unchecked.
      size: a :func:`training.configs.model_size` name.
      data: the stage, ``cc100`` or ``wikipedia``.
      steps: train until this global step.
      validation_inputs: validation shard patterns; None: the training shards.
      validation_steps: evaluation batches (0: no evaluation).
      init_checkpoint: weights to start from ("" for none).
      overrides: the experiment settings given.
      preflight_only: check and exit.
      print_config: print the experiment config before training.
      verbose: Model Garden's INFO logs.
    """

    inputs: tuple[str, ...]
    model_dir: str
    manifest: str | None = None
    vocab: str | None = None
    size: str = "base"
    data: str = "cc100"
    steps: int = 1_000_000
    validation_inputs: tuple[str, ...] | None = None
    validation_steps: int = DEFAULT_VALIDATION_STEPS
    init_checkpoint: str = ""
    overrides: ConfigOverrides = dataclasses.field(default_factory=ConfigOverrides)
    preflight_only: bool = False
    print_config: bool = False
    verbose: bool = False


def options_from_args(args: argparse.Namespace) -> LocalOptions:
    """:class:`LocalOptions` of parsed ``bertjp train local`` arguments."""
    from training import preflight

    numbers = {f.name: getattr(args, f.name) for f in dataclasses.fields(ConfigOverrides)}
    return LocalOptions(
        inputs=tuple(preflight.split_patterns(args.input)), model_dir=args.model_dir,
        manifest=args.manifest, vocab=args.vocab, size=args.size, data=args.data,
        steps=args.steps,
        validation_inputs=(tuple(preflight.split_patterns(args.validation_input))
                           if args.validation_input else None),
        validation_steps=args.validation_steps, init_checkpoint=args.init_checkpoint,
        overrides=ConfigOverrides(**numbers), preflight_only=args.preflight_only,
        print_config=args.print_config, verbose=args.verbose)


def default_manifest_path(input_glob: str) -> str:
    """``PREFIX.manifest.json`` of a shard pattern ``PREFIX-*.tfrecord.gz``.

    Accepts ``PREFIX-*.tfrecord.gz``, ``PREFIX-*-of-*.tfrecord.gz`` and one shard's
    name ``PREFIX-00000-of-00008.tfrecord.gz``.

    Raises:
      ValueError: when the pattern does not end like a ``bertjp pretraining-data`` shard.
    """
    prefix, found = _SHARD_SUFFIX.subn("", input_glob)
    if not found:
        raise ValueError(f"cannot derive the manifest from --input {input_glob!r} (expected "
                         "PREFIX-*.tfrecord.gz); pass --manifest")
    return prefix + ".manifest.json"


def build_config(options: LocalOptions, vocab_size: int):
    """The experiment config of ``bertjp train local``'s options.

    Settings not given keep :func:`training.configs.experiment_config`'s defaults.
    """
    from training import configs

    validation = (",".join(options.validation_inputs)
                  if options.validation_inputs is not None else None)
    return configs.experiment_config(
        options.size, vocab_size, options.data, ",".join(options.inputs), validation,
        train_steps=options.steps, init_checkpoint=options.init_checkpoint,
        validation_steps=options.validation_steps, **options.overrides.given())
