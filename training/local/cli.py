"""``bertjp train local``: the command line (:func:`make_parser`) and :func:`main`.

``main`` reads the flags once into :class:`~training.local.options.LocalOptions`; every
function below it takes that object.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from training.local import checks
from training.local.options import (
    DEFAULT_VALIDATION_STEPS,
    LocalOptions,
    apply_preset,
    build_config,
    options_from_args,
)
from training.local.trainer import TrainResult, select_strategy, train

__all__ = ["EPILOG", "add_continue_options", "main", "make_parser"]

CPU_STEPS_WARNING = 10_000  # more steps than this on a CPU: say how long it may take

EPILOG = """\
Examples:
  bertjp train local --input out/data/cc100-*.tfrecord.gz --vocab out/vocab \\
      --size tiny --steps 2000 --global-batch-size 32 --model-dir out/model/tiny
  bertjp train local --input 'out/a/cc100-*.tfrecord.gz' 'out/b/cc100-*.tfrecord.gz' ...
  bertjp train local ... --preflight-only      # check manifest vs experiment, print config
  tensorboard --logdir out/model/tiny

Running again with the same --model-dir resumes from its latest checkpoint (raise
--steps to train further). Defaults follow the recipe (1,000,000 steps, batch 2048 at
seq 128 for cc100); on a CPU choose a small --size, --steps and --global-batch-size.
The warmup is at most 10% of --steps (2000 steps: 200 warmup steps; a warning says so):
the learning rate rises to its peak at the warmup's end, then falls linearly to 0.
Make the records with `bertjp pretraining-data --preset v3-cc100` (seq 128, 19
predictions, as --data cc100 expects) or `--preset v3-wikipedia` (seq 512, 76: --data
wikipedia); the preflight names any difference and the flag that fixes it (e.g.
--max-predictions-per-seq 20 for records made with pretraining-data's default of 20).

Continued pretraining (--init-from DIR, a transformers BERT directory or a model dir):
  bertjp train local --input 'out/domain/data-*.tfrecord.gz' --init-from models/bert-ja \
      --preset continue --epochs 2 --model-dir out/model/domain
The records must be made with the model's vocabulary (pretraining-data --vocab DIR) and
fit its max positions; the step counter starts at 0 (weights only)."""


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bertjp train local``."""
    p = argparse.ArgumentParser(
        prog="bertjp train local", allow_abbrev=False, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Pretrain a BERT (masked LM + next sentence) with TF Model Garden's\n"
        "bert/pretraining experiment on this machine: one CPU device, or the GPUs when\n"
        "TensorFlow sees any. The shards' manifest is checked against the experiment first.")
    p.add_argument("--input", required=True, metavar="GLOB", action="extend", nargs="+",
                   help="pretraining shards, e.g. out/data/cc100-*.tfrecord.gz; several "
                   "patterns: list them, repeat the flag or separate them by commas")
    p.add_argument("--manifest", metavar="FILE",
                   help="the shards' manifest (default: PREFIX.manifest.json of each "
                   "--input pattern)")
    p.add_argument("--vocab", metavar="DIR",
                   help="vocabulary directory (vocab.txt): sets the vocab size and is "
                   "checked against the manifest's checksum (default: the manifest's size)")
    p.add_argument("--size", default=None,
                   help="model size: base, large, tiny, mini, small, medium or L{layers}_H{hidden}"
                   " (default: base; with --init-from the model's own, and a different "
                   "--size is an error)")
    p.add_argument("--data", choices=("cc100", "wikipedia"), default="cc100",
                   help="training stage: sets seq length, predictions per seq and batch "
                   "(cc100: 128/19/2048, the records of pretraining-data --preset v3-cc100; "
                   "wikipedia: 512/76/512, --preset v3-wikipedia; default: cc100)")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="train until global step N (default: 1,000,000 as the recipe; with "
                   "--preset continue: from --epochs)")
    _add_optional_numbers(p)
    p.add_argument("--validation-input", metavar="GLOB", action="extend", nargs="+",
                   help="validation shards, several as for --input (default: the training "
                   "shards, as the recipe)")
    p.add_argument("--init-checkpoint", default="", metavar="PATH",
                   help="start from these weights (e.g. the cc100 stage's model dir)")
    add_continue_options(p)
    p.add_argument("--model-dir", required=True, metavar="DIR",
                   help="checkpoints, TensorBoard summaries and params.yaml go here")
    p.add_argument("--preflight-only", action="store_true",
                   help="check manifest vs experiment and the files --input matches against "
                   "the manifest, print both and exit (0: fine, 1: problems)")
    p.add_argument("--print-config", action="store_true",
                   help="print the experiment config (YAML) before training")
    p.add_argument("--verbose", action="store_true",
                   help="Model Garden's INFO logs, and tracebacks on errors")
    return p


def add_continue_options(p) -> None:
    """``--init-from``, ``--preset`` and ``--epochs`` (shared with ``bertjp train tpu``)."""
    from training import configs

    p.add_argument("--init-from", default="", metavar="DIR",
                   help="continue pretraining from a model: a transformers BERT directory "
                   "(config.json, weights, vocab.txt; imported into MODEL_DIR/init/) or a "
                   "Model Garden model dir / checkpoint prefix with its params.yaml. Weights "
                   "only: training starts at step 0 with a fresh warmup and schedule; the "
                   "size comes from the model; the records must use its vocabulary and fit "
                   "its max positions (checked). Excludes --init-checkpoint")
    p.add_argument("--preset", choices=("continue",), default=None,
                   help="continue: defaults for continued pretraining (explicit flags win): "
                   f"peak learning rate {configs.CONTINUE_LEARNING_RATE:g} (a fifth of the "
                   "from-scratch 1e-4: hfl/Chinese-BERT-wwm advise a much lower rate than "
                   "1e-4 when continuing), warmup "
                   f"{configs.CONTINUE_WARMUP_FRACTION * 100:g}%% of the steps (Gururangan et al. "
                   "2020, Don't Stop Pretraining), steps = ceil(--epochs x the manifest's "
                   "instances / global batch size)")
    p.add_argument("--epochs", type=float, default=None, metavar="E",
                   help="with --preset continue: passes over the records that set the steps "
                   f"(default: {configs.CONTINUE_EPOCHS:g}; --steps overrides)")


def _add_optional_numbers(p: argparse.ArgumentParser) -> None:
    """The experiment settings (:class:`~training.local.options.ConfigOverrides`) and
    ``--validation-steps``."""
    numbers = [
        ("--global-batch-size", int, "instances per step (default: from --data)"),
        ("--seq-length", int, "tokens per instance (default: from --data)"),
        ("--max-predictions-per-seq", int, "masked positions per instance (default: from --data)"),
        ("--learning-rate", float, "peak learning rate (default: 1e-4, 5e-5 for large)"),
        ("--warmup-steps", int, "linear warmup steps, at most 10%% of --steps (default: "
         "10000)"),
        ("--steps-per-loop", int, "steps per progress line (default: 1000)"),
        ("--checkpoint-interval", int, "steps between checkpoints (default: 20000)"),
        ("--summary-interval", int, "steps between TensorBoard summaries (default: 1000)"),
        ("--validation-interval", int, "steps between evaluations (default: 1000)"),
        ("--max-to-keep", int, "checkpoints kept (default: 5)"),
    ]
    for flag, type_, help_ in numbers:
        p.add_argument(flag, type=type_, metavar="N" if type_ is int else "X", help=help_)
    p.add_argument("--validation-steps", type=int, default=DEFAULT_VALIDATION_STEPS,
                   metavar="N", help="evaluation batches after training and every "
                   f"--validation-interval steps; 0: no evaluation "
                   f"(default: {DEFAULT_VALIDATION_STEPS})")


def _setup_logging(verbose: bool) -> None:
    """TensorFlow's and absl's log levels: INFO with ``--verbose``, else warnings."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.WARNING)


def _warn_warmup(options: LocalOptions) -> None:
    """Says so when --warmup-steps is clipped to a share of --steps."""
    from training import configs

    requested = options.overrides.warmup_steps
    if requested is None:
        requested = configs.DEFAULT_WARMUP_STEPS
    warning = configs.warmup_warning(options.steps, requested, "--steps")
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def _report_problems(problems: list[str]) -> None:
    """The preflight's problems, on stderr."""
    print(f"preflight: {len(problems)} problem(s):", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


def _announce(options: LocalOptions, config, where: str) -> None:
    """What is trained where, a resumed checkpoint, and a warning for long CPU runs."""
    import tensorflow as tf

    t = config.trainer
    data = config.task.train_data
    model_dir = options.model_dir
    print(f"training {options.size} ({options.data}: seq {data.seq_length}, batch "
          f"{data.global_batch_size}) to step {t.train_steps:,} with {where}; "
          f"model dir {model_dir}", flush=True)
    latest = tf.train.latest_checkpoint(model_dir)
    if latest:
        print(f"resuming from {latest}", flush=True)
    if not config.runtime.num_gpus and t.train_steps > CPU_STEPS_WARNING:
        print(f"warning: {t.train_steps:,} steps on a CPU will take a very long time "
              "(the recipe's steps are for a TPU); set --steps, --size and "
              "--global-batch-size for a local run", file=sys.stderr, flush=True)


def _finish(result: TrainResult, model_dir: str) -> None:
    """The final loss, validation metrics, checkpoint and TensorBoard command."""
    if result.history:
        step, loss = result.history[-1]
        print(f"final loss {loss:.4f} at step {step} (started at step {result.start_step})")
    else:
        print(f"nothing to train: the model dir is already at step {result.start_step}")
    if result.eval_metrics:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(result.eval_metrics.items()))
        print(f"validation: {shown}")
    print(f"checkpoint: {result.checkpoint}")
    print(f"TensorBoard: tensorboard --logdir {model_dir}", flush=True)


def _preflight_only(groups: list[checks.ManifestGroup], config, problems: list[str]) -> int:
    """``--preflight-only``: the manifests, the config and the problems; the exit code."""
    from training import configs, preflight

    for path, manifest, _ in groups:
        print(f"manifest {path}: {preflight.describe(manifest)}")
    print(configs.to_yaml(config), end="")
    if problems:
        _report_problems(problems)
        return 1
    print("preflight: no problems")
    return 0


def _train(options: LocalOptions, config, init=None) -> None:
    """Picks the devices, checks and writes the model dir, trains and reports."""
    from training import configs

    where = select_strategy(config)
    if options.print_config:
        print(configs.to_yaml(config), end="")
    checks.check_model_dir(config, options.model_dir)
    if init is not None:
        _start_from(options, config, init)
    checks.write_params(config, options.model_dir)
    _announce(options, config, where)
    _finish(train(config, options.model_dir), options.model_dir)


def _start_from(options: LocalOptions, config, init) -> None:
    """Sets ``task.init_checkpoint`` to the ``--init-from`` model (a transformers
    directory is imported into MODEL_DIR/init/ first); a resumed run needs neither."""
    import tensorflow as tf

    from training.local import init_from

    if tf.train.latest_checkpoint(options.model_dir):
        return  # Model Garden resumes the model dir; init_checkpoint is not read
    target = os.path.join(options.model_dir, init_from.INIT_SUBDIR)
    if init.kind == "transformers":
        print(f"importing {init.path} into {target}", flush=True)
    checkpoint = init_from.import_into(init, target)
    config.override({"task": {"init_checkpoint": checkpoint}}, is_strict=True)
    print(f"starting from the weights of {checkpoint} (step 0, fresh optimizer and "
          "schedule)", flush=True)


def _init_source(options: LocalOptions):
    """The ``--init-from`` model (None without it), and the options with its size."""
    import dataclasses

    from training.local import init_from

    if not options.init_from:
        return None, options
    init = init_from.resolve(options.init_from)
    size = init_from.size_for(init, options.size if options.size_given else None)
    if os.path.abspath(init.path) == os.path.abspath(options.model_dir.rstrip("/")):
        raise ValueError("--model-dir is the --init-from model dir; use a new --model-dir "
                         "(continuing there would resume its step counter, not start at 0)")
    return init, dataclasses.replace(options, size=size)


def _init_problems(options: LocalOptions, groups, init) -> list[str]:
    """The records of every manifest against the ``--init-from`` model."""
    from training import preflight

    problems = []
    for path, manifest, _ in groups:
        found = preflight.init_problems(
            manifest, init_dir=init.path, vocab_size=init.vocab_size,
            max_position_embeddings=init.max_position_embeddings, vocab_dir=init.vocab_dir)
        problems += [f"{path}: {p}" for p in found] if len(groups) > 1 else found
    return problems


def _instances(groups) -> int:
    """Instances of all the records (the manifests' counts)."""
    from bertjp.manifest import records_spec

    return sum(records_spec(manifest).instances for _, manifest, _ in groups)


def main(argv: Sequence[str] | None = None) -> int:
    """``bertjp train local ...``; returns the exit code (1: preflight problems).

    Raises:
      ValueError, FileNotFoundError: for bad options, a missing manifest or vocabulary,
        or a model dir that holds another model.
    """
    options = options_from_args(make_parser().parse_args(argv))
    _setup_logging(options.verbose)
    init, options = _init_source(options)
    groups = checks.load_manifests(options)
    if init is not None:
        init_problems = _init_problems(options, groups, init)
        if init_problems:
            _report_problems(init_problems)
            return 1
    if options.preset:
        options = apply_preset(options, _instances(groups))
        print(f"preset {options.preset}: {options.steps:,} steps, peak learning rate "
              f"{options.overrides.learning_rate:g}, warmup {options.overrides.warmup_steps} "
              "steps", flush=True)
    if init is None:
        config = build_config(options, checks.vocab_size(options, groups[0][1]))
    else:
        config = build_config(options, init.vocab_size, init.max_position_embeddings)
        if init.kind == "checkpoint":  # a transformers directory: set after its import
            config.override({"task": {"init_checkpoint": init.checkpoint}}, is_strict=True)
    _warn_warmup(options)
    problems = checks.preflight_problems(options, groups, config)
    if options.preflight_only:
        return _preflight_only(groups, config, problems)
    if problems:
        _report_problems(problems)
        return 1
    _train(options, config, init)
    return 0
