"""Model Garden training on this machine: the distribution strategy, the run and its
progress lines (:func:`train`).

TensorFlow, Orbit and Model Garden are imported inside the functions, when training
starts.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from typing import Any, Callable

__all__ = ["EvalRecorder", "Progress", "TrainResult", "select_strategy", "train"]


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
    """A tensor's (or a number's) value as a float."""
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
