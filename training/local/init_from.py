"""``--init-from DIR`` of ``bertjp train local|tpu``: continue pretraining from a model.

DIR is a transformers BERT directory (``config.json``, weights, ``vocab.txt``; imported
into ``MODEL_DIR/init/`` with :func:`training.importer.import_model` before training),
or a Model Garden model dir (its latest checkpoint) or checkpoint prefix, with the
``params.yaml`` ``bertjp train`` writes next to it. :func:`resolve` reads only the
metadata (architecture, vocabulary, max positions), so the preflight and a TPU
``--dry-run`` never import anything.

Weights only: the checkpoint becomes ``task.init_checkpoint``, which Model Garden
restores (``Task.initialize``: the model's ``checkpoint_items``, never the optimizer
or the global step) when the model dir holds no checkpoint yet. The run starts at step
0 with a fresh warmup and schedule to ``--steps``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

__all__ = ["INIT_SUBDIR", "InitSource", "import_into", "resolve", "size_for"]

INIT_SUBDIR = "init"  # under the model dir: the imported (or staged) checkpoint


@dataclasses.dataclass(frozen=True)
class InitSource:
    """What ``--init-from`` points at.

    Attributes:
      path: the ``--init-from`` value.
      kind: ``transformers`` (imported before training) or ``checkpoint``.
      checkpoint: the checkpoint prefix ("" for a transformers directory until imported).
      shape: the encoder's shape (``configs.ModelSize``).
      size: its :func:`training.configs.model_size` name.
      vocab_size: rows of the word embedding.
      max_position_embeddings: rows of the position embedding.
      vocab_dir: the model's vocabulary directory (vocab.txt), None when it has none.
    """

    path: str
    kind: str
    checkpoint: str
    shape: Any
    size: str
    vocab_size: int
    max_position_embeddings: int
    vocab_dir: str | None


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def _read_json(path: str) -> dict:
    with _gfile().GFile(path) as f:
        return json.load(f)


def _shape_name(shape, path: str) -> str:
    from training import configs

    name = configs.size_name_of(shape)
    if name is None:
        raise ValueError(f"--init-from {path}: its architecture ({shape.num_layers} layers, "
                         f"hidden {shape.hidden_size}, {shape.num_heads} heads, intermediate "
                         f"{shape.intermediate_size}) is none of the sizes bertjp trains "
                         f"({', '.join(configs.size_names())})")
    return name


def _from_transformers(path: str) -> InitSource:
    from training import configs

    config = _read_json(os.path.join(path, "config.json"))
    if config.get("model_type", "bert") != "bert":
        raise ValueError(f"--init-from {path}: model_type {config.get('model_type')!r} is not "
                         "bert")
    shape = configs.ModelSize(num_layers=int(config["num_hidden_layers"]),
                              hidden_size=int(config["hidden_size"]),
                              num_heads=int(config["num_attention_heads"]),
                              intermediate_size=int(config["intermediate_size"]))
    vocab = path if _gfile().exists(os.path.join(path, "vocab.txt")) else None
    return InitSource(path=path, kind="transformers", checkpoint="", shape=shape,
                      size=_shape_name(shape, path), vocab_size=int(config["vocab_size"]),
                      max_position_embeddings=int(config.get("max_position_embeddings", 512)),
                      vocab_dir=vocab)


def _checkpoint_prefix(path: str) -> tuple[str, str]:
    """(checkpoint prefix, directory holding params.yaml) of a model dir or prefix."""
    import tensorflow as tf

    gfile = _gfile()
    if gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if not latest:
            raise ValueError(f"--init-from {path}: no checkpoint in this directory (neither a "
                             "transformers directory with config.json nor a model dir)")
        return latest, path
    if gfile.exists(path + ".index"):
        return path, os.path.dirname(path)
    raise FileNotFoundError(f"--init-from {path}: no such directory or checkpoint prefix "
                            f"({path}.index)")


def _from_checkpoint(path: str) -> InitSource:
    import yaml

    from training import configs

    prefix, home = _checkpoint_prefix(path)
    params = os.path.join(home, "params.yaml")
    if not _gfile().exists(params):
        raise FileNotFoundError(f"--init-from {path}: no params.yaml in {home} (written by "
                                "bertjp train); it gives the model's architecture")
    with _gfile().GFile(params) as f:
        bert = (yaml.safe_load(f) or {})["task"]["model"]["encoder"]["bert"]
    shape = configs.ModelSize(num_layers=int(bert["num_layers"]),
                              hidden_size=int(bert["hidden_size"]),
                              num_heads=int(bert["num_attention_heads"]),
                              intermediate_size=int(bert["intermediate_size"]))
    vocab = home if _gfile().exists(os.path.join(home, "vocab.txt")) else None
    return InitSource(path=path, kind="checkpoint", checkpoint=prefix, shape=shape,
                      size=_shape_name(shape, path), vocab_size=int(bert["vocab_size"]),
                      max_position_embeddings=int(bert["max_position_embeddings"]),
                      vocab_dir=vocab)


def resolve(path: str) -> InitSource:
    """The model at ``path``: a transformers directory (``config.json``) or a Model
    Garden model dir / checkpoint prefix (with ``params.yaml``); reads metadata only.

    Raises:
      FileNotFoundError, ValueError: naming ``--init-from`` and what is missing.
    """
    path = str(path).rstrip("/")
    if _gfile().exists(os.path.join(path, "config.json")):
        return _from_transformers(path)
    return _from_checkpoint(path)


def size_for(source: InitSource, size: str | None) -> str:
    """The size to train: the model's, or ``size`` when it names the same shape.

    Raises:
      ValueError: naming both when ``--size`` differs from the model's architecture.
    """
    from training import configs

    if size is None:
        return source.size
    if configs.model_size(size) != source.shape:
        raise ValueError(f"--size {size} does not match the --init-from model {source.path}, "
                         f"which is {source.size}; drop --size or pass --size {source.size}")
    return size


def import_into(source: InitSource, output_dir: str, log=print) -> str:
    """The checkpoint prefix to start from: the given checkpoint, or a transformers
    directory imported into ``output_dir`` (again when it was imported before)."""
    if source.kind != "transformers":
        return source.checkpoint
    from training.importer import import_model  # written alongside; imported when used

    result = import_model(source.path, output_dir, overwrite=True, log=log)
    return str(result.checkpoint)
