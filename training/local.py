"""``bertjp train local``: pretrain a BERT with Model Garden on this machine.

The flow: read the shards' manifest, build the recipe's experiment
(:func:`training.configs.experiment_config`), check the two against each other
(:func:`training.preflight.check`), pick a distribution strategy (the GPUs when
TensorFlow sees any, else one CPU device), write ``params.yaml`` into the model
directory and run Model Garden's ``train_lib.run_experiment``. A progress line is
printed after every ``steps_per_loop`` steps. Running again with the same
``--model-dir`` continues from its latest checkpoint (Model Garden restores it).

TensorFlow and Model Garden are imported only when training starts, so ``--help``
answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import re
import sys
import time
from typing import Any, Callable, Sequence

__all__ = [
    "EvalRecorder",
    "Progress",
    "TrainResult",
    "build_config",
    "default_manifest_path",
    "main",
    "make_parser",
    "select_strategy",
    "train",
]

DEFAULT_VALIDATION_STEPS = 4
CPU_STEPS_WARNING = 10_000  # more steps than this on a CPU: say how long it may take
_SHARD_SUFFIX = re.compile(r"-(?:\*|[\d*?]+-of-[\d*?]+)\.tfrecord\.gz$")

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
The recipe's cc100 records have 19 predictions per sequence; for records made with
pretraining-data's default of 20, add --max-predictions-per-seq 20."""


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
    p.add_argument("--size", default="base",
                   help="model size: base, large, tiny, mini, small, medium or L{layers}_H{hidden}"
                   " (default: base)")
    p.add_argument("--data", choices=("cc100", "wikipedia"), default="cc100",
                   help="training stage: sets seq length, predictions per seq and batch "
                   "(cc100: 128/19/2048, wikipedia: 512/76/512; default: cc100)")
    p.add_argument("--steps", type=int, default=1_000_000, metavar="N",
                   help="train until global step N (default: 1,000,000 as the recipe)")
    _add_optional_numbers(p)
    p.add_argument("--validation-input", metavar="GLOB", action="extend", nargs="+",
                   help="validation shards, several as for --input (default: the training "
                   "shards, as the recipe)")
    p.add_argument("--init-checkpoint", default="", metavar="PATH",
                   help="start from these weights (e.g. the cc100 stage's model dir)")
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


def _add_optional_numbers(p: argparse.ArgumentParser) -> None:
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


_CONFIG_OPTIONS = ("global_batch_size", "seq_length", "max_predictions_per_seq",
                   "learning_rate", "warmup_steps", "steps_per_loop", "checkpoint_interval",
                   "summary_interval", "validation_interval", "max_to_keep")


def build_config(args: argparse.Namespace, vocab_size: int):
    """The experiment config of parsed ``bertjp train local`` arguments.

    Options left unset keep :func:`training.configs.experiment_config`'s defaults.
    """
    from training import configs, preflight

    given = {name: getattr(args, name) for name in _CONFIG_OPTIONS
             if getattr(args, name) is not None}
    validation = (",".join(preflight.split_patterns(args.validation_input))
                  if args.validation_input else None)
    return configs.experiment_config(
        args.size, vocab_size, args.data, ",".join(preflight.split_patterns(args.input)),
        validation,
        train_steps=args.steps, init_checkpoint=args.init_checkpoint,
        validation_steps=args.validation_steps, **given)


def select_strategy(config) -> str:
    """Sets ``config.runtime`` for this machine; returns a description of it.

    All GPUs TensorFlow sees (``mirrored`` for several, ``one_device`` for one);
    otherwise ``one_device`` on the CPU with XLA off.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        strategy = "mirrored" if len(gpus) > 1 else "one_device"
        config.override({"runtime": {"distribution_strategy": strategy,
                                     "num_gpus": len(gpus)}}, is_strict=True)
        return f"{strategy} on {len(gpus)} GPU(s)"
    config.override({"runtime": {"distribution_strategy": "one_device", "num_gpus": 0,
                                 "enable_xla": False}}, is_strict=True)
    return "one_device on the CPU"


@dataclasses.dataclass
class TrainResult:
    """What a training run did.

    Attributes:
      start_step: global step restored from the model dir (0 for a fresh run).
      final_step: global step at the end.
      history: ``(step, loss)`` after each loop of ``steps_per_loop`` steps.
      eval_metrics: the last evaluation's metrics (empty without evaluation).
      checkpoint: the latest checkpoint in the model dir (None if none).
    """

    start_step: int
    final_step: int
    history: list[tuple[int, float]]
    eval_metrics: dict[str, float]
    checkpoint: str | None


def _scalar(value: Any) -> float:
    return float(getattr(value, "numpy", lambda: value)())


class Progress:
    """An Orbit train action: one line with step, loss, steps/s and ETA per loop."""

    def __init__(self, train_steps: int, print_fn: Callable[[str], None] | None = None):
        self.train_steps = train_steps
        self.start_step = 0
        self.history: list[tuple[int, float]] = []
        self._print = print_fn or (lambda line: print(line, flush=True))
        self._global_step = None
        self._last = (0, time.monotonic())

    def attach(self, global_step) -> None:
        """Follows ``global_step`` (a restored checkpoint has already set it)."""
        self._global_step = global_step
        self.start_step = int(global_step.numpy())
        self.restart_clock()

    def restart_clock(self, _output: Any = None) -> None:
        """Measures steps/s from now on (an Orbit eval action: evaluations don't count)."""
        self._last = (int(self._global_step.numpy()), time.monotonic())

    def __call__(self, output: dict) -> None:
        step, now = int(self._global_step.numpy()), time.monotonic()
        rate = (step - self._last[0]) / max(now - self._last[1], 1e-9)
        self._last = (step, now)
        loss = _scalar(output["training_loss"])
        self.history.append((step, loss))
        eta = (self.train_steps - step) / rate if rate > 0 else 0.0
        parts = [f"step {step:>{len(str(self.train_steps))}}/{self.train_steps}",
                 f"loss {loss:.4f}"]
        for key, label in (("lm_example_loss", "mlm"), ("next_sentence_loss", "nsp")):
            if key in output:
                parts.append(f"{label} {_scalar(output[key]):.4f}")
        if "learning_rate" in output:
            parts.append(f"lr {_scalar(output['learning_rate']):.3g}")
        parts += [f"{rate:.2f} steps/s", f"ETA {datetime.timedelta(seconds=round(eta))}"]
        self._print("progress | " + " | ".join(parts))


class EvalRecorder:
    """An Orbit eval action that keeps the last evaluation's metrics as floats."""

    def __init__(self):
        self.metrics: dict[str, float] = {}

    def __call__(self, output: dict) -> None:
        self.metrics = {k: _scalar(v) for k, v in output.items()}


def _controller_factory(progress: Progress):
    """A ``controller_cls`` for ``run_experiment``: Orbit's controller plus ``progress``."""
    import orbit

    def build(**kwargs):
        controller = orbit.Controller(**kwargs)
        if controller.trainer is not None:
            progress.attach(controller.global_step)
            controller.train_actions = (*controller.train_actions, progress)
            controller.eval_actions = (*controller.eval_actions, progress.restart_clock)
        return controller

    return build


def train(config, model_dir: str, progress: Progress | None = None) -> TrainResult:
    """Runs Model Garden's ``run_experiment`` for ``config`` into ``model_dir``.

    The mode is ``train_and_eval`` when ``config.trainer.validation_steps > 0`` (an
    evaluation every ``validation_interval`` steps and at the end), else ``train``.
    ``config.runtime`` must be set (:func:`select_strategy`).
    """
    import tensorflow as tf
    from official.common import distribute_utils
    from official.core import task_factory, train_lib
    from official.modeling import performance

    runtime = config.runtime
    if runtime.mixed_precision_dtype:
        performance.set_mixed_precision_policy(runtime.mixed_precision_dtype)
    strategy = distribute_utils.get_distribution_strategy(
        distribution_strategy=runtime.distribution_strategy, num_gpus=runtime.num_gpus,
        all_reduce_alg=runtime.all_reduce_alg)
    with strategy.scope():
        task = task_factory.get_task(config.task, logging_dir=model_dir)
    progress = progress or Progress(config.trainer.train_steps)
    evals = EvalRecorder()
    mode = "train_and_eval" if config.trainer.validation_steps > 0 else "train"
    train_lib.run_experiment(
        distribution_strategy=strategy, task=task, mode=mode, params=config,
        model_dir=model_dir, run_post_eval=False, eval_actions=[evals],
        controller_cls=_controller_factory(progress))
    final = progress.history[-1][0] if progress.history else progress.start_step
    return TrainResult(start_step=progress.start_step, final_step=final,
                       history=progress.history, eval_metrics=evals.metrics,
                       checkpoint=tf.train.latest_checkpoint(model_dir))


def _load_manifests(args: argparse.Namespace) -> list[tuple[str, dict, list[str]]]:
    """``(manifest path, manifest, the --input patterns it describes)`` for each manifest:
    ``--manifest`` for every pattern, else ``PREFIX.manifest.json`` of each pattern."""
    from training import preflight

    patterns = preflight.split_patterns(args.input)
    by_path: dict[str, list[str]] = {}
    for pattern in patterns:
        by_path.setdefault(args.manifest or default_manifest_path(pattern), []).append(pattern)
    groups = []
    for path, described in by_path.items():
        try:
            groups.append((path, preflight.load_manifest(path), described))
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{e}; or pass --manifest") from None
    return groups


def _preflight(args: argparse.Namespace, groups, config) -> list[str]:
    """Every manifest against the experiment, and the files the patterns match."""
    from training import preflight

    problems = []
    for path, manifest, _ in groups:
        found = preflight.check(manifest, config, num_hosts=1, vocab_dir=args.vocab)
        problems += [f"{path}: {p}" for p in found] if len(groups) > 1 else found
    problems += preflight.file_problems(groups, "--input")
    if args.validation_input:
        patterns = preflight.split_patterns(args.validation_input)
        problems += preflight.match_files(patterns, "--validation-input")[1]
    return problems


def _warn_warmup(args: argparse.Namespace) -> None:
    """Says so when --warmup-steps is clipped to a share of --steps."""
    from training import configs

    requested = (configs.DEFAULT_WARMUP_STEPS if args.warmup_steps is None
                 else args.warmup_steps)
    warning = configs.warmup_warning(args.steps, requested, "--steps")
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def _vocab_size(args: argparse.Namespace, manifest: dict) -> int:
    from training import configs

    if args.vocab:
        return configs.vocab_size_of(args.vocab)
    if "vocab_size" not in manifest:
        raise ValueError("the manifest has no vocab_size; pass --vocab")
    return int(manifest["vocab_size"])


def _report_problems(problems: list[str]) -> None:
    print(f"preflight: {len(problems)} problem(s):", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


def _plain_model(config) -> dict:
    import yaml

    from training import configs

    return yaml.safe_load(configs.to_yaml(config))["task"]["model"]


def _check_model_dir(config, model_dir: str) -> None:
    """Refuses a model dir whose checkpoint belongs to a different model."""
    import tensorflow as tf
    import yaml

    params = os.path.join(model_dir, "params.yaml")
    if not (tf.train.latest_checkpoint(model_dir) and tf.io.gfile.exists(params)):
        return
    with tf.io.gfile.GFile(params) as f:
        old = (yaml.safe_load(f) or {}).get("task", {}).get("model")
    new = _plain_model(config)
    if old is not None and old != new:
        differ = sorted(_differences(old, new))[:5]
        raise ValueError(f"{model_dir} holds checkpoints of a different model (task.model "
                         f"differs at {', '.join(differ)}); use a new --model-dir")


def _differences(old: Any, new: Any, prefix: str = "task.model") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in set(old) | set(new)
                for d in _differences(old.get(key), new.get(key), f"{prefix}.{key}")]
    return [] if old == new else [prefix]


def _write_params(config, model_dir: str) -> str:
    import tensorflow as tf

    from training import configs

    tf.io.gfile.makedirs(model_dir)
    path = os.path.join(model_dir, "params.yaml")
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(configs.to_yaml(config))
    return path


def _setup_logging(verbose: bool) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.WARNING)


def _announce(args, config, where: str, model_dir: str) -> None:
    import tensorflow as tf

    t = config.trainer
    data = config.task.train_data
    print(f"training {args.size} ({args.data}: seq {data.seq_length}, batch "
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


def main(argv: Sequence[str] | None = None) -> int:
    """``bertjp train local ...``; returns the exit code (1: preflight problems).

    Raises:
      ValueError, FileNotFoundError: for bad options, a missing manifest or vocabulary,
        or a model dir that holds another model.
    """
    args = make_parser().parse_args(argv)
    _setup_logging(args.verbose)
    groups = _load_manifests(args)
    config = build_config(args, _vocab_size(args, groups[0][1]))
    _warn_warmup(args)
    from training import configs, preflight

    problems = _preflight(args, groups, config)
    if args.preflight_only:
        for path, manifest, _ in groups:
            print(f"manifest {path}: {preflight.describe(manifest)}")
        print(configs.to_yaml(config), end="")
        if problems:
            _report_problems(problems)
            return 1
        print("preflight: no problems")
        return 0
    if problems:
        _report_problems(problems)
        return 1
    where = select_strategy(config)
    if args.print_config:
        print(configs.to_yaml(config), end="")
    _check_model_dir(config, args.model_dir)
    _write_params(config, args.model_dir)
    _announce(args, config, where, args.model_dir)
    result = train(config, args.model_dir)
    _finish(result, args.model_dir)
    return 0
