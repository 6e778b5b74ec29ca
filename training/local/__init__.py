"""``bertjp train local``: pretrain a BERT with Model Garden on this machine.

The flow: read the flags once into :class:`LocalOptions` (:mod:`.options`), read the
shards' manifest, build the recipe's experiment
(:func:`training.configs.experiment_config`), check the two against each other
(:func:`training.preflight.check`, :mod:`.checks`), pick a distribution strategy (the
GPUs when TensorFlow sees any, else one CPU device), write ``params.yaml`` into the
model directory and run Model Garden's ``train_lib.run_experiment`` (:mod:`.trainer`).
A progress line is printed after every ``steps_per_loop`` steps. Running again with the
same ``--model-dir`` continues from its latest checkpoint (Model Garden restores it).
:mod:`.cli` holds the parser and :func:`main`.

TensorFlow and Model Garden are imported only when training starts, so ``--help``
answers at once.
"""

from training.local.cli import main, make_parser
from training.local.options import (
    ConfigOverrides,
    LocalOptions,
    build_config,
    default_manifest_path,
    options_from_args,
)
from training.local.trainer import EvalRecorder, Progress, TrainResult, select_strategy, train

__all__ = [
    "ConfigOverrides",
    "EvalRecorder",
    "LocalOptions",
    "Progress",
    "TrainResult",
    "build_config",
    "default_manifest_path",
    "main",
    "make_parser",
    "options_from_args",
    "select_strategy",
    "train",
]
