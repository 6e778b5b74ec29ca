"""The Model Garden side: the experiment config, the model, its variables, the checkpoint."""

from __future__ import annotations

import os

import numpy as np

from training.convert.architecture import Architecture

__all__ = ["build_model", "checkpoint_root", "experiment_config", "matching_size",
           "model_variables", "write_checkpoint"]

CHECKPOINT_NAME = "ckpt-0"
_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def matching_size(arch: Architecture) -> str | None:
    """The ``training.configs.model_size`` name of ``arch``'s encoder shape, or None."""
    from training import configs

    shape = configs.ModelSize(num_layers=arch.num_layers, hidden_size=arch.hidden_size,
                              num_heads=arch.num_heads, intermediate_size=arch.intermediate_size)
    return next((n for n in configs.size_names() if configs.model_size(n) == shape), None)


def experiment_config(arch: Architecture, data: str = "cc100"):
    """The ``bert/pretraining`` experiment of ``training.configs`` with ``arch``'s encoder.

    The recipe's settings of the matching size (or of ``base`` when no size matches,
    with the encoder's numbers replaced), an empty training input.
    """
    from training import configs

    size = matching_size(arch) or "base"
    seq = min(configs.DATA[data].seq_length, arch.max_position_embeddings)
    predictions = min(configs.DATA[data].max_predictions_per_seq, seq)
    config = configs.experiment_config(size, arch.vocab_size, data, train_input="",
                                       seq_length=seq, max_predictions_per_seq=predictions)
    bert = config.task.model.encoder.bert
    bert.num_layers = arch.num_layers
    bert.hidden_size = arch.hidden_size
    bert.num_attention_heads = arch.num_heads
    bert.intermediate_size = arch.intermediate_size
    bert.max_position_embeddings = arch.max_position_embeddings
    bert.type_vocab_size = arch.type_vocab_size
    config.task.model.cls_heads[0].inner_dim = arch.hidden_size
    config.validate()
    return config


def build_model(config):
    """The ``BertPretrainerV2`` of ``config``, called once so every variable exists."""
    import tensorflow as tf
    from official.core import task_factory

    task = task_factory.get_task(config.task)
    model = task.build_model()
    seq = 8
    model({"input_word_ids": tf.zeros((1, seq), tf.int32),
           "input_mask": tf.ones((1, seq), tf.int32),
           "input_type_ids": tf.zeros((1, seq), tf.int32),
           "masked_lm_positions": tf.zeros((1, 2), tf.int32)}, training=False)
    return model


def checkpoint_root(model):
    """What the checkpoint saves: the model and its ``checkpoint_items``, as the trainer
    does (without its step counter and optimizer)."""
    import tensorflow as tf

    return tf.train.Checkpoint(model=model, **model.checkpoint_items)


def model_variables(root) -> dict:
    """Checkpoint variable name (as ``tf.train.load_checkpoint`` lists it, without the
    suffix) -> the ``tf.Variable``, for every variable under ``root`` (a
    :func:`checkpoint_root`)."""
    import tensorflow as tf
    from tensorflow.python.checkpoint import graph_view, util

    objects, _, _, _, names = util.objects_ids_and_slot_variables_and_paths(
        graph_view.ObjectGraphView(root), skip_slot_variables=True)
    out = {}
    for obj in objects:
        if isinstance(obj, tf.Variable):
            out[names[obj]] = obj
    return out


def write_checkpoint(root, variables: dict, values: dict, directory: str) -> str:
    """Assigns ``values`` (name -> array) and writes ``directory/ckpt-0`` with its
    ``checkpoint`` state file (a relative path, so the directory can move).

    Returns:
      The checkpoint prefix.
    """
    if set(values) != set(variables):
        raise AssertionError(f"values for {sorted(set(values) ^ set(variables))[:3]}")
    for name, variable in variables.items():
        value = np.asarray(values[name], np.float32)
        if tuple(variable.shape) != value.shape:
            raise AssertionError(f"{name}: {value.shape} for a {variable.shape} variable")
        variable.assign(value)
    prefix = os.path.join(directory, CHECKPOINT_NAME)
    root.write(prefix)
    with open(os.path.join(directory, "checkpoint"), "w", encoding="utf-8") as f:
        f.write(f'model_checkpoint_path: "{CHECKPOINT_NAME}"\n'
                f'all_model_checkpoint_paths: "{CHECKPOINT_NAME}"\n')
    return prefix
