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
    "apply_preset",
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
      init_from: ``--init-from``: a transformers directory or a model dir / checkpoint
        whose weights (and architecture) start a continued pretraining ("" for none).
      preset: ``continue`` or "" (:func:`apply_preset`).
      epochs: ``--epochs``: passes over the records that set the steps (preset continue).
      size_given: whether ``--size`` was given (else the model's size with --init-from).
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
    init_from: str = ""
    preset: str = ""
    epochs: float | None = None
    size_given: bool = False
    overrides: ConfigOverrides = dataclasses.field(default_factory=ConfigOverrides)
    preflight_only: bool = False
    print_config: bool = False
    verbose: bool = False


def options_from_args(args: argparse.Namespace) -> LocalOptions:
    """:class:`LocalOptions` of parsed ``bertjp train local`` arguments."""
    from training import preflight

    numbers = {f.name: getattr(args, f.name) for f in dataclasses.fields(ConfigOverrides)}
    init_from = getattr(args, "init_from", "") or ""
    if init_from and args.init_checkpoint:
        raise ValueError("--init-from and --init-checkpoint exclude each other (--init-from "
                         "continues a released model, --init-checkpoint starts a stage from "
                         "another's weights)")
    preset = getattr(args, "preset", "") or ""
    epochs = getattr(args, "epochs", None)
    if epochs is not None and preset != "continue":
        raise ValueError("--epochs sets the steps of --preset continue; pass --preset continue "
                         "or --steps")
    steps = args.steps
    if steps is None:
        steps = 0 if preset == "continue" else 1_000_000  # 0: from --epochs (apply_preset)
    return LocalOptions(
        inputs=tuple(preflight.split_patterns(args.input)), model_dir=args.model_dir,
        manifest=args.manifest, vocab=args.vocab, size=args.size or "base", data=args.data,
        steps=steps, init_from=init_from, preset=preset, epochs=epochs,
        size_given=args.size is not None,
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


def apply_preset(options: LocalOptions, instances: int) -> LocalOptions:
    """The options with ``--preset continue``'s defaults filled in (given flags win):
    the steps of ``--epochs`` (default 1) over ``instances`` at the global batch, the
    continued-pretraining peak learning rate and its warmup share
    (:data:`training.configs.CONTINUE_LEARNING_RATE`, ``CONTINUE_WARMUP_FRACTION``)."""
    from training import configs

    if options.preset != "continue":
        return options
    given = options.overrides
    steps = options.steps
    if not steps:
        batch = (given.global_batch_size if given.global_batch_size is not None
                 else configs.DATA[options.data].global_batch_size)
        epochs = configs.CONTINUE_EPOCHS if options.epochs is None else options.epochs
        steps = configs.continue_steps(epochs, instances, batch)
    overrides = dataclasses.replace(
        given,
        learning_rate=(configs.CONTINUE_LEARNING_RATE if given.learning_rate is None
                       else given.learning_rate),
        warmup_steps=(configs.continue_warmup(steps) if given.warmup_steps is None
                      else given.warmup_steps))
    return dataclasses.replace(options, steps=steps, overrides=overrides)


def build_config(options: LocalOptions, vocab_size: int,
                 max_position_embeddings: int | None = None):
    """The experiment config of ``bertjp train local``'s options.

    Settings not given keep :func:`training.configs.experiment_config`'s defaults.
    """
    from training import configs

    extra = ({} if max_position_embeddings is None
             else {"max_position_embeddings": max_position_embeddings})

    validation = (",".join(options.validation_inputs)
                  if options.validation_inputs is not None else None)
    return configs.experiment_config(
        options.size, vocab_size, options.data, ",".join(options.inputs), validation,
        train_steps=options.steps, init_checkpoint=options.init_checkpoint,
        validation_steps=options.validation_steps, **options.overrides.given(), **extra)
