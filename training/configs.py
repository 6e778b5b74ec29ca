"""Model Garden ``bert/pretraining`` experiments with the recipe's settings.

The shared contract of the ``training`` package: model sizes, the two data stages
(CC-100 at seq 128, then Wikipedia at seq 512), an ``ExperimentConfig`` builder, its
YAML form for ``python -m official.nlp.train`` and the registered ``bertjp/...``
experiments. TensorFlow and Model Garden are imported only inside the functions that
need them, so importing this module (and :func:`vocab_size_of` on local paths) is cheap.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import TYPE_CHECKING, Any

from bertjp import defaults
from bertjp.vocab_files import read_vocab

if TYPE_CHECKING:  # pragma: no cover
    from official.core.config_definitions import ExperimentConfig

__all__ = [
    "DATA",
    "CONTINUE_EPOCHS",
    "CONTINUE_LEARNING_RATE",
    "CONTINUE_WARMUP_FRACTION",
    "DataSpec",
    "DEFAULT_WARMUP_STEPS",
    "EXPERIMENT_PREFIX",
    "MAX_WARMUP_FRACTION",
    "ModelSize",
    "SUBWORD_VOCAB_SIZES",
    "continue_steps",
    "continue_warmup",
    "default_learning_rate",
    "experiment_config",
    "experiment_names",
    "model_size",
    "register_experiments",
    "size_name_of",
    "size_names",
    "to_yaml",
    "vocab_size_of",
    "vocab_tokens",
    "warmup_steps_used",
    "warmup_warning",
]

BASE_EXPERIMENT = "bert/pretraining"
EXPERIMENT_PREFIX = "bertjp"
MAX_POSITION_EMBEDDINGS = defaults.MAX_POSITION_EMBEDDINGS
SUBWORD_VOCAB_SIZES = {"wordpiece": 32768, "character": 7027}  # the released v3 vocabularies
MAX_WARMUP_FRACTION = 0.1  # warmup steps are clipped to this share of a stage's steps
DEFAULT_WARMUP_STEPS = 10_000


@dataclasses.dataclass(frozen=True)
class ModelSize:
    """Shape of a BERT encoder.

    Attributes:
      num_layers: transformer blocks.
      hidden_size: width of the hidden states.
      num_heads: attention heads (hidden_size / 64 for all sizes here).
      intermediate_size: width of the feed-forward layer (4 x hidden_size).
    """

    num_layers: int
    hidden_size: int
    num_heads: int
    intermediate_size: int


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Input shape and batch of one training stage.

    Attributes:
      seq_length: tokens per instance (the records' ``--max-seq-length``).
      max_predictions_per_seq: masked positions per instance.
      global_batch_size: instances per step over all replicas.
    """

    seq_length: int
    max_predictions_per_seq: int
    global_batch_size: int


DATA: dict[str, DataSpec] = {
    # The records of pretraining-data --preset v3-cc100 / v3-wikipedia (one source).
    "cc100": DataSpec(seq_length=defaults.PRESETS["v3-cc100"].max_seq_length,
                      max_predictions_per_seq=defaults.PRESETS["v3-cc100"].max_predictions_per_seq,
                      global_batch_size=2048),
    "wikipedia": DataSpec(
        seq_length=defaults.PRESETS["v3-wikipedia"].max_seq_length,
        max_predictions_per_seq=defaults.PRESETS["v3-wikipedia"].max_predictions_per_seq,
        global_batch_size=512),
}

_GRID_LAYERS = (2, 4, 6, 8, 10, 12)
_GRID_HIDDEN = (128, 256, 512, 768)
_ALIASES = {"tiny": "L2_H128", "mini": "L4_H256", "small": "L4_H512", "medium": "L8_H512",
            "base": "L12_H768"}
_LARGE = ModelSize(num_layers=24, hidden_size=1024, num_heads=16, intermediate_size=4096)
_GRID_NAME = re.compile(r"^L(\d+)_H(\d+)$", re.IGNORECASE)


def _compact(layers: int, hidden: int) -> ModelSize:
    return ModelSize(num_layers=layers, hidden_size=hidden, num_heads=hidden // 64,
                     intermediate_size=4 * hidden)


def size_names() -> list[str]:
    """All names :func:`model_size` accepts: aliases, ``large``, then the compact grid."""
    grid = [f"L{layers}_H{hidden}" for layers in _GRID_LAYERS for hidden in _GRID_HIDDEN]
    return [*_ALIASES, "large", *grid]


def model_size(name: str) -> ModelSize:
    """The encoder shape of a size name.

    Args:
      name: ``base``, ``large``, ``tiny``, ``mini``, ``small``, ``medium`` or a compact
        "Well-Read Students" size ``L{layers}_H{hidden}`` with layers in 2..12 (even)
        and hidden in 128, 256, 512, 768 (e.g. ``L4_H256``).

    Raises:
      ValueError: for an unknown name; the message lists the valid ones.
    """
    key = str(name).strip()
    if key.lower() == "large":
        return _LARGE
    key = _ALIASES.get(key.lower(), key)
    match = _GRID_NAME.match(key)
    if match:
        layers, hidden = int(match.group(1)), int(match.group(2))
        if layers in _GRID_LAYERS and hidden in _GRID_HIDDEN:
            return _compact(layers, hidden)
    raise ValueError(f"unknown model size {name!r}; valid sizes: {', '.join(size_names())}")


def size_name_of(shape: ModelSize) -> str | None:
    """The :func:`model_size` name of an encoder shape (``large``, ``base``,
    ``L{layers}_H{hidden}``); None when no name gives this shape."""
    if shape == _LARGE:
        return "large"
    name = f"L{shape.num_layers}_H{shape.hidden_size}"
    try:
        found = model_size(name)
    except ValueError:
        return None
    if found != shape:
        return None
    return next((alias for alias, grid in _ALIASES.items() if grid == name), name)


# --preset continue: continued pretraining of a released model (--init-from).
#   peak learning rate 2e-5, a fifth of the from-scratch 1e-4 (this recipe, as
#     cl-tohoku/bert-japanese v3 base; 5e-5 for large). hfl (ymcui/Chinese-BERT-wwm#72):
#     RoBERTa-wwm was pretrained at 1e-4 with 10k warmup steps, and continuing "needs a
#     much lower rate, e.g. 1e-5, depending on your data"; #17: keep it small (Google's
#     pre-training tips); #141: 1e-4 base / 5e-5 large from scratch. Gururangan et al.
#     2020 ("Don't Stop Pretraining", ACL; appendix hyper-parameters) continued RoBERTa
#     at a peak just below its original one (DAPT 5e-4 at batch 2048 vs RoBERTa's 6e-4;
#     TAPT 1e-4) with a 6 % warmup; 2e-5 sits between hfl's advice and that.
#   warmup: 6 % of the steps (Gururangan et al. 2020).
#   steps: ceil(epochs x instances / global batch); 1 epoch by default (DAPT's 12.5k
#     steps at batch 2048 were about one pass over the larger domain corpora).
CONTINUE_LEARNING_RATE = 2e-5
CONTINUE_WARMUP_FRACTION = 0.06
CONTINUE_EPOCHS = 1.0


def continue_steps(epochs: float, instances: int, global_batch_size: int) -> int:
    """Steps of ``epochs`` passes over ``instances`` at ``global_batch_size``
    (rounded up, at least 1).

    Raises:
      ValueError: for a non-positive number of epochs or instances.
    """
    if epochs <= 0:
        raise ValueError(f"--epochs {epochs} must be positive")
    if instances < 1:
        raise ValueError("the records hold no instances; --epochs needs the manifest's count")
    return max(1, math.ceil(epochs * instances / global_batch_size))


def continue_warmup(train_steps: int) -> int:
    """The preset's warmup: :data:`CONTINUE_WARMUP_FRACTION` of the steps, rounded."""
    return round(train_steps * CONTINUE_WARMUP_FRACTION)


def default_learning_rate(size: str) -> float:
    """The recipe's peak learning rate: 5e-5 for ``large``, 1e-4 for every other size."""
    return 5e-5 if model_size(size) == _LARGE else 1e-4


def _open_binary(path: str):
    """A binary file: local with ``open``, ``gs://`` through ``tf.io.gfile``."""
    if path.startswith("gs://"):
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(path)
        return tf.io.gfile.GFile(path, "rb")
    return open(path, "rb")  # noqa: SIM115 - the caller's with closes it


def vocab_tokens(vocab_dir: str) -> list[str]:
    """Tokens of ``vocab_dir/vocab.txt`` (or of ``vocab_dir`` when it is the file itself),
    read by the project's one reader (:func:`bertjp.vocab_files.read_vocab`).

    Raises:
      FileNotFoundError: when the vocabulary file does not exist.
    """
    return read_vocab(str(vocab_dir), _open_binary)


def vocab_size_of(vocab_dir: str) -> int:
    """Number of tokens (lines) in ``vocab_dir/vocab.txt``; accepts the file path too."""
    return len(vocab_tokens(vocab_dir))


def _encoder_override(size: ModelSize, vocab_size: int,
                      max_position_embeddings: int = MAX_POSITION_EMBEDDINGS) -> dict[str, Any]:
    return {
        "type": "bert",
        "bert": {
            "vocab_size": vocab_size,
            "hidden_size": size.hidden_size,
            "num_layers": size.num_layers,
            "num_attention_heads": size.num_heads,
            "intermediate_size": size.intermediate_size,
            "hidden_activation": "gelu",
            "dropout_rate": 0.1,
            "attention_dropout_rate": 0.1,
            "initializer_range": 0.02,
            "max_position_embeddings": max_position_embeddings,
            "type_vocab_size": 2,
        },
    }


def _nsp_head(size: ModelSize) -> dict[str, Any]:
    return {"inner_dim": size.hidden_size, "num_classes": 2, "name": "next_sentence",
            "activation": "tanh", "dropout_rate": 0.1, "cls_token_idx": 0}


def _data_override(input_path: str, spec: DataSpec, is_training: bool) -> dict[str, Any]:
    return {
        "input_path": input_path,
        "global_batch_size": spec.global_batch_size,
        "seq_length": spec.seq_length,
        "max_predictions_per_seq": spec.max_predictions_per_seq,
        "use_next_sentence_label": True,
        "use_position_id": False,
        "use_v2_feature_names": True,
        "file_type": "tfrecord_compressed",
        "drop_remainder": is_training,
        "is_training": is_training,
    }


def warmup_steps_used(train_steps: int, warmup_steps: int) -> int:
    """The warmup a stage of ``train_steps`` steps gets for ``warmup_steps`` requested.

    At most :data:`MAX_WARMUP_FRACTION` of the stage (rounded down), so a short run
    still reaches its peak learning rate and decays over most of its steps: 2,000
    steps with the recipe's 10,000 warmup steps warm up for 200.
    """
    return min(warmup_steps, int(train_steps * MAX_WARMUP_FRACTION))


def warmup_warning(train_steps: int, warmup_steps: int, steps_flag: str) -> str | None:
    """One line saying that ``warmup_steps`` was clipped (None when it was not).

    Args:
      train_steps: the stage's steps.
      warmup_steps: the warmup asked for.
      steps_flag: the option that set ``train_steps`` (named in the line).
    """
    used = warmup_steps_used(train_steps, warmup_steps)
    if used >= warmup_steps:
        return None
    share = f"{MAX_WARMUP_FRACTION:.0%}".replace("%", " %")
    what = (f"warming up for {used} steps instead (the learning rate peaks at step {used}"
            if used else "no warmup (the learning rate starts at its peak")
    return (f"--warmup-steps {warmup_steps} is more than {share} of {steps_flag} "
            f"{train_steps}; {what}, then decays linearly to 0 at step {train_steps})")


def _optimizer_override(learning_rate: float, train_steps: int,
                        warmup_steps: int) -> dict[str, Any]:
    """AdamW with a linear warmup to ``learning_rate``, then a linear decay to 0.

    Model Garden's polynomial warmup climbs to the decay schedule's value at the end
    of the warmup, so the decay starts there (``offset``) and runs over the remaining
    steps: the peak is reached at the end of the warmup and 0 at ``train_steps``.
    """
    warmup = warmup_steps_used(train_steps, warmup_steps)
    return {
        "optimizer": {
            "type": "adamw",
            "adamw": {"weight_decay_rate": 0.01,
                      "exclude_from_weight_decay": ["LayerNorm", "layer_norm", "bias"]},
        },
        "learning_rate": {
            "type": "polynomial",
            "polynomial": {"initial_learning_rate": learning_rate,
                           "decay_steps": train_steps - warmup, "offset": warmup,
                           "end_learning_rate": 0.0, "power": 1.0, "cycle": False},
        },
        "warmup": {
            "type": "polynomial",
            "polynomial": {"power": 1, "warmup_steps": warmup},
        },
    }


def _data_spec(data: str, global_batch_size: int | None, seq_length: int | None,
               max_predictions_per_seq: int | None,
               max_positions: int = MAX_POSITION_EMBEDDINGS) -> DataSpec:
    if data not in DATA:
        raise ValueError(f"unknown data {data!r}; valid: {', '.join(DATA)}")
    base = DATA[data]
    spec = DataSpec(
        seq_length=base.seq_length if seq_length is None else seq_length,
        max_predictions_per_seq=(base.max_predictions_per_seq
                                 if max_predictions_per_seq is None else max_predictions_per_seq),
        global_batch_size=base.global_batch_size if global_batch_size is None
        else global_batch_size)
    _check_spec(spec, max_positions)
    return spec


def _check_spec(spec: DataSpec, max_positions: int = MAX_POSITION_EMBEDDINGS) -> None:
    if not 2 < spec.seq_length <= max_positions:
        raise ValueError(f"seq length {spec.seq_length} must be in 3..{max_positions}")
    if not 0 < spec.max_predictions_per_seq <= spec.seq_length:
        raise ValueError(f"max predictions per seq {spec.max_predictions_per_seq} must be in "
                         f"1..{spec.seq_length} (the seq length)")
    if spec.global_batch_size < 1:
        raise ValueError(f"global batch size {spec.global_batch_size} must be positive")


def _check_steps(train_steps: int, warmup_steps: int, vocab_size: int) -> None:
    if train_steps < 1:
        raise ValueError(f"train steps {train_steps} must be positive")
    if warmup_steps < 0:
        raise ValueError(f"warmup steps {warmup_steps} must not be negative")
    if vocab_size < 1:
        raise ValueError(f"vocab size {vocab_size} must be positive")


def experiment_config(size: str, vocab_size: int, data: str, train_input: str,
                      validation_input: str | None = None, *, train_steps: int = 1_000_000,
                      learning_rate: float | None = None,
                      warmup_steps: int = DEFAULT_WARMUP_STEPS,
                      global_batch_size: int | None = None, init_checkpoint: str = "",
                      checkpoint_interval: int = 20_000, steps_per_loop: int = 1000,
                      summary_interval: int = 1000, validation_interval: int = 1000,
                      validation_steps: int = 64, max_to_keep: int = 5,
                      seq_length: int | None = None,
                      max_predictions_per_seq: int | None = None,
                      max_position_embeddings: int = MAX_POSITION_EMBEDDINGS
                      ) -> "ExperimentConfig":
    """Model Garden's ``bert/pretraining`` experiment with the recipe's overrides.

    Args:
      size: a :func:`model_size` name.
      vocab_size: tokens in the vocabulary (:func:`vocab_size_of`).
      data: ``cc100`` (seq 128, 19 predictions, batch 2048) or ``wikipedia`` (512, 76, 512).
      train_input: file pattern(s) of the gzip TFRecord shards (comma-separated allowed).
      validation_input: validation shards; the training shards when None (as the recipe).
      train_steps: steps of this stage; the learning rate reaches 0 at the last one.
      learning_rate: peak learning rate (reached at the end of the warmup, then
        linear decay to 0); 1e-4 (5e-5 for ``large``) when None.
      warmup_steps: linear warmup steps, clipped to 10 % of ``train_steps``
        (:func:`warmup_steps_used`).
      global_batch_size: overrides ``DATA[data]``'s.
      init_checkpoint: checkpoint (or model dir) whose weights start this stage.
      checkpoint_interval: steps between checkpoints.
      steps_per_loop: steps of one inner training loop (and one progress line).
      summary_interval: steps between TensorBoard summaries.
      validation_interval: steps between validations.
      validation_steps: batches of one validation.
      max_to_keep: checkpoints kept.
      seq_length: overrides ``DATA[data]``'s.
      max_predictions_per_seq: overrides ``DATA[data]``'s.
      max_position_embeddings: the encoder's position table (512; a model continued
        with ``--init-from`` keeps its own).

    Returns:
      A validated ``ExperimentConfig``; the runtime (distribution strategy) is left to
      the caller.

    Raises:
      ValueError: for an unknown size or data name, or out-of-range numbers.
    """
    shape = model_size(size)
    spec = _data_spec(data, global_batch_size, seq_length, max_predictions_per_seq,
                      max_position_embeddings)
    _check_steps(train_steps, warmup_steps, vocab_size)
    rate = default_learning_rate(size) if learning_rate is None else float(learning_rate)
    validation = train_input if validation_input is None else validation_input
    override = {
        "task": {
            "init_checkpoint": init_checkpoint,
            "model": {"encoder": _encoder_override(shape, vocab_size,
                                                   max_position_embeddings),
                      "cls_heads": [_nsp_head(shape)]},
            "train_data": _data_override(train_input, spec, is_training=True),
            "validation_data": _data_override(validation, spec, is_training=False),
        },
        "trainer": {
            "train_steps": train_steps, "checkpoint_interval": checkpoint_interval,
            "max_to_keep": max_to_keep, "steps_per_loop": steps_per_loop,
            "summary_interval": summary_interval, "validation_interval": validation_interval,
            "validation_steps": validation_steps,
            "optimizer_config": _optimizer_override(rate, train_steps, warmup_steps),
        },
    }
    config = _base_config()
    config.override(override, is_strict=True)
    config.validate()
    return config


def _base_config() -> "ExperimentConfig":
    from official.core import exp_factory
    from official.nlp.configs import pretraining_experiments  # noqa: F401  (registers it)

    return exp_factory.get_exp_config(BASE_EXPERIMENT)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_yaml(config) -> str:
    """YAML of ``config`` that ``python -m official.nlp.train --config_file=...`` accepts."""
    import yaml

    return yaml.safe_dump(_plain(config.as_dict()), default_flow_style=False, sort_keys=False)


def experiment_names() -> list[str]:
    """Names :func:`register_experiments` registers (``bertjp/<size>_<subword>_<data>``)."""
    return [f"{EXPERIMENT_PREFIX}/{size}_{subword}_{data}"
            for size in ("base", "large") for subword in SUBWORD_VOCAB_SIZES for data in DATA]


def _factory(size: str, subword: str, data: str):
    def factory():
        return experiment_config(size, SUBWORD_VOCAB_SIZES[subword], data, train_input="")

    factory.__name__ = f"{size}_{subword}_{data}"
    factory.__doc__ = f"BERT-{size} {subword} on {data} (input_path to be set)."
    return factory


def register_experiments() -> None:
    """Registers the 8 ``bertjp/{base,large}_{wordpiece,character}_{cc100,wikipedia}``.

    Their input paths are empty (override ``task.train_data.input_path`` and
    ``task.validation_data.input_path``). Calling it again does nothing.
    """
    from official.core import exp_factory, registry

    for name in experiment_names():
        try:
            registry.lookup(exp_factory._REGISTERED_CONFIGS, name)  # noqa: SLF001
            continue
        except LookupError:
            pass
        size, subword, data = name.split("/", 1)[1].split("_")
        exp_factory.register_config_factory(name)(_factory(size, subword, data))
