"""Reading a Model Garden TF2 object-based checkpoint: its layout and its variables."""

from __future__ import annotations

import re

import numpy as np

__all__ = [
    "ENCODER",
    "MLM",
    "NSP_OUT",
    "NSP_POOLER",
    "CheckpointReader",
    "is_training_state",
]

_VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"
# Checkpoint prefixes of each part: first as Model Garden's trainer saves them (the
# model's checkpoint_items at the top level), then as tf.train.Checkpoint(model=model).
ENCODER = ("encoder/", "model/encoder_network/")
MLM = ("masked_lm/", "model/masked_lm/")
NSP_POOLER = ("next_sentence..pooler_dense", "model/classification_heads/0/dense")
NSP_OUT = ("model/classification_heads/0/out_proj",)
_NOT_WEIGHTS = ("optimizer/", "global_step", "save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH")


class CheckpointReader:
    """The variables of a TF2 object-based checkpoint, by name without the suffix."""

    def __init__(self, prefix: str):
        import tensorflow as tf

        self.prefix = prefix
        self._reader = tf.train.load_checkpoint(prefix)
        shapes = self._reader.get_variable_to_shape_map()
        self.shapes = {name[: -len(_VALUE)]: tuple(shape) for name, shape in shapes.items()
                       if name.endswith(_VALUE)}

    def resolve(self, candidates: tuple[str, ...]) -> str | None:
        """The first of ``candidates`` present in the checkpoint."""
        return next((name for name in candidates if name in self.shapes), None)

    def read(self, name: str) -> np.ndarray:
        """The value of variable ``name`` as float32."""
        return np.asarray(self._reader.get_tensor(name + _VALUE), dtype=np.float32)

    def transformer_layers(self) -> list[int]:
        """Indices N of ``encoder/layer_with_weights-N`` that are transformer blocks."""
        for prefix in ENCODER:
            block = re.compile(re.escape(prefix) + r"layer_with_weights-(\d+)/_attention_layer/")
            found = {int(m.group(1)) for m in map(block.match, self.shapes) if m}
            if found:
                return sorted(found)
        return []


def is_training_state(name: str) -> bool:
    """Optimizer slots and state, step counters: never part of the model."""
    return name.startswith(_NOT_WEIGHTS) or "/.OPTIMIZER_SLOT/" in name
