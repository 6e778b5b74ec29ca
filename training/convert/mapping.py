"""Which checkpoint variable becomes which ``BertForPreTraining`` parameter, and how.

Every model parameter must be written exactly once from a checkpoint variable of the
expected shape; anything else is an error naming the variable.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from training.convert.architecture import Architecture
from training.convert.checkpoint import (
    ENCODER,
    MLM,
    NSP_OUT,
    NSP_POOLER,
    CheckpointReader,
    is_training_state,
)

__all__ = ["TensorSource", "check_layers", "leftovers", "load_weights", "parameter_sources"]


@dataclasses.dataclass(frozen=True)
class TensorSource:
    """Where one model parameter comes from.

    Attributes:
      candidates: checkpoint variable names (without ``/.ATTRIBUTES/VARIABLE_VALUE``),
        the first present one is used.
      kind: how the TF value becomes the PyTorch one: ``copy``, ``kernel`` (transpose),
        ``qkv_kernel``, ``qkv_bias`` or ``attention_output_kernel``.
    """

    candidates: tuple[str, ...]
    kind: str = "copy"


# --------------------------------------------------------------------------- sources


def _under(prefixes: tuple[str, ...], name: str) -> tuple[str, ...]:
    return tuple(p + name for p in prefixes)


def _dense(paths: tuple[str, ...], kernel_kind: str = "kernel",
           bias_kind: str = "copy") -> dict[str, TensorSource]:
    return {"weight": TensorSource(_under(paths, "/kernel"), kernel_kind),
            "bias": TensorSource(_under(paths, "/bias"), bias_kind)}


def _norm(paths: tuple[str, ...]) -> dict[str, TensorSource]:
    return {"weight": TensorSource(_under(paths, "/gamma")),
            "bias": TensorSource(_under(paths, "/beta"))}


def _prefixed(prefix: str, parts: dict[str, TensorSource]) -> dict[str, TensorSource]:
    return {f"{prefix}.{key}": value for key, value in parts.items()}


def _layer_sources(index: int) -> dict[str, TensorSource]:
    block = _under(ENCODER, f"layer_with_weights-{index + 4}/")
    attention = _under(block, "_attention_layer/")
    hf = f"bert.encoder.layer.{index}"
    out = {}
    for name in ("query", "key", "value"):
        out |= _prefixed(f"{hf}.attention.self.{name}",
                         _dense(_under(attention, f"_{name}_dense"), "qkv_kernel", "qkv_bias"))
    out |= _prefixed(f"{hf}.attention.output.dense",
                     _dense(_under(attention, "_output_dense"), "attention_output_kernel"))
    out |= _prefixed(f"{hf}.attention.output.LayerNorm",
                     _norm(_under(block, "_attention_layer_norm")))
    out |= _prefixed(f"{hf}.intermediate.dense", _dense(_under(block, "_intermediate_dense")))
    out |= _prefixed(f"{hf}.output.dense", _dense(_under(block, "_output_dense")))
    out |= _prefixed(f"{hf}.output.LayerNorm", _norm(_under(block, "_output_layer_norm")))
    return out


def _embedding_sources() -> dict[str, TensorSource]:
    word = TensorSource(_under(MLM, "embedding_table")
                        + _under(ENCODER, "layer_with_weights-0/embeddings"))
    out = {
        "bert.embeddings.word_embeddings.weight": word,
        "cls.predictions.decoder.weight": word,
        "bert.embeddings.position_embeddings.weight":
            TensorSource(_under(ENCODER, "layer_with_weights-1/embeddings")),
        "bert.embeddings.token_type_embeddings.weight":
            TensorSource(_under(ENCODER, "layer_with_weights-2/embeddings")),
    }
    return out | _prefixed("bert.embeddings.LayerNorm",
                           _norm(_under(ENCODER, "layer_with_weights-3")))


def _head_sources() -> dict[str, TensorSource]:
    bias = TensorSource(_under(MLM, "output_bias.Sbias"))
    out = {"cls.predictions.bias": bias, "cls.predictions.decoder.bias": bias}
    out |= _prefixed("cls.predictions.transform.dense", _dense(_under(MLM, "dense")))
    out |= _prefixed("cls.predictions.transform.LayerNorm", _norm(_under(MLM, "layer_norm")))
    out |= _prefixed("bert.pooler.dense", _dense(NSP_POOLER))
    return out | _prefixed("cls.seq_relationship", _dense(NSP_OUT))


def parameter_sources(num_layers: int) -> dict[str, TensorSource]:
    """Checkpoint source of every ``BertForPreTraining`` parameter name (tied ones too)."""
    out = _embedding_sources() | _head_sources()
    for index in range(num_layers):
        out |= _layer_sources(index)
    return out


_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "copy": lambda v: v,
    "kernel": lambda v: v.T,
    "qkv_kernel": lambda v: v.reshape(v.shape[0], -1).T,  # [H, heads, dh] -> [H*, H]
    "qkv_bias": lambda v: v.reshape(-1),  # [heads, dh] -> [H]
    "attention_output_kernel": lambda v: v.reshape(-1, v.shape[-1]).T,  # [heads, dh, H]
}


def _expected_tf_shape(kind: str, shape: tuple[int, ...], num_heads: int) -> tuple[int, ...]:
    """The checkpoint shape that ``kind`` turns into the PyTorch ``shape``."""
    if kind == "kernel":
        return shape[::-1]
    if kind == "qkv_kernel":
        return (shape[1], num_heads, shape[0] // num_heads)
    if kind == "qkv_bias":
        return (num_heads, shape[0] // num_heads)
    if kind == "attention_output_kernel":
        return (num_heads, shape[1] // num_heads, shape[0])
    return shape


# --------------------------------------------------------------------------- checks


def check_layers(ckpt: CheckpointReader, arch: Architecture) -> None:
    """Checks that ``ckpt`` holds ``arch.num_layers`` transformer blocks at 4, 5, ...

    Raises:
      ValueError: no encoder variables, blocks elsewhere, or another number of them.
    """
    layers = ckpt.transformer_layers()
    if not layers:
        raise ValueError(f"{ckpt.prefix} holds no BERT encoder variables (expected "
                         "encoder/layer_with_weights-N/_attention_layer/...): is it a "
                         "checkpoint of Model Garden's bert/pretraining experiment?")
    if layers != list(range(4, 4 + len(layers))):
        raise ValueError(f"{ckpt.prefix}: transformer blocks at layer_with_weights-{layers}, "
                         "expected 4, 5, ... (a BertEncoder without embedding projection)")
    if len(layers) != arch.num_layers:
        raise ValueError(f"the checkpoint has {len(layers)} transformer layers, the model "
                         f"({arch.source}) expects {arch.num_layers}")


def _shape_error(name: str, actual: tuple, expected: tuple, param: str,
                 arch: Architecture) -> ValueError:
    return ValueError(f"checkpoint variable {name} has shape {list(actual)}, the model "
                      f"expects {list(expected)} (for {param}; architecture from "
                      f"{arch.source})")


def load_weights(model, ckpt: CheckpointReader, arch: Architecture) -> set[str]:
    """Writes every parameter of ``model`` from ``ckpt``; returns the variables read.

    Raises:
      ValueError: a parameter without a source variable, a shape mismatch, or tied
        parameters that map to different variables.
    """
    import torch

    sources = parameter_sources(arch.num_layers)
    named = list(model.named_parameters(remove_duplicate=False))
    unknown = sorted(set(sources) - {name for name, _ in named})
    if unknown:
        raise ValueError(f"the mapping names parameters BertForPreTraining does not have: "
                         f"{unknown[:5]} (a transformers version change?)")
    written: dict[int, tuple[str, str]] = {}
    for hf_name, param in named:
        source = sources.get(hf_name)
        if source is None:
            raise ValueError(f"no checkpoint mapping for model parameter {hf_name}")
        name = ckpt.resolve(source.candidates)
        if name is None:
            raise ValueError(f"the checkpoint has no variable for {hf_name} "
                             f"(looked for {' or '.join(source.candidates)})")
        if id(param) in written:  # a tied parameter (decoder weight and bias)
            if written[id(param)][0] != name:
                raise ValueError(f"{hf_name} is tied to {written[id(param)][1]} but maps to "
                                 f"{name}, not {written[id(param)][0]}")
            continue
        expected = _expected_tf_shape(source.kind, tuple(param.shape), arch.num_heads)
        if ckpt.shapes[name] != expected:
            raise _shape_error(name, ckpt.shapes[name], expected, hf_name, arch)
        value = _TRANSFORMS[source.kind](ckpt.read(name))
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
        written[id(param)] = (name, hf_name)
    return {name for name, _ in written.values()}


def leftovers(ckpt: CheckpointReader, used: set[str], arch: Architecture) -> tuple[list, list]:
    """(skipped encoder pooler variables, other unused model variables)."""
    pooler = _under(ENCODER, f"layer_with_weights-{arch.num_layers + 4}/")
    rest = [n for n in sorted(ckpt.shapes) if n not in used and not is_training_state(n)]
    skipped = [n for n in rest if n.startswith(pooler)]
    return skipped, [n for n in rest if not n.startswith(pooler)]
