"""The shape of the BERT to build: from ``params.yaml`` beside the checkpoint or a size."""

from __future__ import annotations

import dataclasses
import os

__all__ = [
    "Architecture",
    "architecture_from_params",
    "architecture_from_size",
    "describe",
    "resolve_architecture",
]

_NSP_HEAD_NAME = "next_sentence"


@dataclasses.dataclass(frozen=True)
class Architecture:
    """Shape of the BERT to build.

    Attributes:
      num_layers, hidden_size, num_heads, intermediate_size: the encoder.
      vocab_size: rows of the word embedding table.
      max_position_embeddings, type_vocab_size: the other embedding tables.
      source: where the numbers came from (for messages).
    """

    num_layers: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    source: str = ""


def _read_params(checkpoint: str) -> dict | None:
    """The ``params.yaml`` next to a checkpoint prefix, or None."""
    import tensorflow as tf
    import yaml

    path = os.path.join(os.path.dirname(checkpoint), "params.yaml")
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as f:
        return yaml.safe_load(f.read())


def _check_supported(encoder: dict, task: dict, where: str) -> None:
    """Refuses encoders and heads that ``BertForPreTraining`` cannot represent."""
    bert = encoder.get("bert") or {}
    problems = []
    if encoder.get("type", "bert") != "bert":
        problems.append(f"encoder type {encoder.get('type')!r} (only 'bert')")
    if bert.get("norm_first"):
        problems.append("norm_first (pre-LN) encoder")
    if bert.get("embedding_size") not in (None, bert.get("hidden_size")):
        problems.append(f"embedding_size {bert['embedding_size']} != hidden_size")
    for key, value in (("hidden_activation", bert.get("hidden_activation", "gelu")),
                       ("mlm_activation", task.get("model", {}).get("mlm_activation", "gelu"))):
        if value != "gelu":
            problems.append(f"{key} {value!r} (only gelu)")
    heads = [h.get("name") for h in task.get("model", {}).get("cls_heads") or []]
    if heads != [_NSP_HEAD_NAME]:
        problems.append(f"classification heads {heads} (expected [{_NSP_HEAD_NAME!r}])")
    if problems:
        raise ValueError(f"{where}: not convertible to BertForPreTraining: "
                         + "; ".join(problems))


def architecture_from_params(params: dict, where: str = "params.yaml") -> Architecture:
    """The architecture recorded in a Model Garden ``params.yaml`` (as a dict).

    Raises:
      ValueError: for encoders this converter does not handle (not ``bert``, pre-LN,
        factorized embeddings, other heads than ``next_sentence``, other activations).
    """
    task = params.get("task") or {}
    encoder = (task.get("model") or {}).get("encoder") or {}
    _check_supported(encoder, task, where)
    bert = encoder.get("bert") or {}
    try:
        return Architecture(
            num_layers=int(bert["num_layers"]), hidden_size=int(bert["hidden_size"]),
            num_heads=int(bert["num_attention_heads"]),
            intermediate_size=int(bert["intermediate_size"]),
            vocab_size=int(bert["vocab_size"]),
            max_position_embeddings=int(bert.get("max_position_embeddings", 512)),
            type_vocab_size=int(bert.get("type_vocab_size", 2)), source=where)
    except KeyError as err:
        raise ValueError(f"{where}: task.model.encoder.bert has no {err.args[0]!r}") from None


def architecture_from_size(size: str, vocab_size: int) -> Architecture:
    """The architecture of a ``training.configs.model_size`` name with ``vocab_size``."""
    from training import configs

    shape = configs.model_size(size)
    return Architecture(num_layers=shape.num_layers, hidden_size=shape.hidden_size,
                        num_heads=shape.num_heads, intermediate_size=shape.intermediate_size,
                        vocab_size=vocab_size, source=f"--size {size}")


def resolve_architecture(checkpoint: str, size: str | None, vocab_size: int) -> Architecture:
    """The architecture of ``size`` if given, else the one in ``params.yaml`` beside it.

    Raises:
      ValueError: no ``params.yaml`` and no ``size``, an unsupported encoder, or a
        ``params.yaml`` vocabulary size other than ``vocab_size``.
    """
    if size:
        return architecture_from_size(size, vocab_size)
    params = _read_params(checkpoint)
    if params is None:
        raise ValueError(f"no params.yaml beside {checkpoint}: pass --size (e.g. base, "
                         "large, L4_H256) to give the architecture")
    arch = architecture_from_params(params, os.path.join(os.path.dirname(checkpoint),
                                                         "params.yaml"))
    if arch.vocab_size != vocab_size:
        raise ValueError(f"the vocabulary has {vocab_size} tokens, the model "
                         f"({arch.source}) has {arch.vocab_size}: wrong --vocab?")
    return arch


def describe(arch: Architecture) -> str:
    """A one-line description of ``arch`` for the progress log."""
    return (f"{arch.num_layers} layers, hidden {arch.hidden_size}, {arch.num_heads} heads, "
            f"intermediate {arch.intermediate_size}, vocab {arch.vocab_size} "
            f"(from {arch.source})")
