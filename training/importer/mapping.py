"""transformers parameter -> Model Garden checkpoint variable: ``training.convert``'s
mapping, inverted.

:func:`training.convert.mapping.parameter_sources` says which checkpoint variable
becomes which ``BertForPreTraining`` parameter and how (``kind``); here every variable
of the Model Garden model is looked up in that table the other way round, and the
inverse of each ``kind``'s transform gives its value. Two variables are outside the
table: the encoder's own pooler (``bertjp convert`` skips it; it gets the model's
pooler, as the NSP head's pooler does) and, for a model without an NSP head, the
head itself (a fresh, seeded one).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from training.convert.architecture import Architecture
from training.convert.checkpoint import ENCODER
from training.convert.mapping import _TRANSFORMS, parameter_sources

__all__ = ["Assignment", "INVERSE_TRANSFORMS", "NSP_PARAMETERS", "checkpoint_values",
           "inverse_sources"]

INVERSE_TRANSFORMS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "copy": lambda w, heads: w,
    "kernel": lambda w, heads: w.T,
    "qkv_kernel": lambda w, heads: w.T.reshape(w.shape[1], heads, -1),  # -> [H, heads, dh]
    "qkv_bias": lambda w, heads: w.reshape(heads, -1),  # -> [heads, dh]
    "attention_output_kernel": lambda w, heads: w.T.reshape(heads, -1, w.shape[0]),
}
# The NSP head of BertForPreTraining: all present (imported) or all absent (fresh).
NSP_PARAMETERS = ("bert.pooler.dense.weight", "bert.pooler.dense.bias",
                  "cls.seq_relationship.weight", "cls.seq_relationship.bias")
_POOLER = {"kernel": ("bert.pooler.dense.weight", "kernel"),
           "bias": ("bert.pooler.dense.bias", "copy")}


@dataclasses.dataclass(frozen=True)
class Assignment:
    """The value of one checkpoint variable and where it came from.

    Attributes:
      value: the array to assign (float32, the variable's shape).
      parameters: the transformers parameters it was made from (empty: fresh).
    """

    value: np.ndarray
    parameters: tuple[str, ...]


def inverse_sources(arch: Architecture,
                    variables: dict[str, tuple[int, ...]]) -> dict[str, list[tuple[str, str]]]:
    """Checkpoint variable -> [(transformers parameter, kind)] from convert's table.

    Args:
      arch: the encoder's shape.
      variables: the Model Garden model's checkpoint variable names and shapes.

    Returns:
      Every variable of ``variables`` the table names, with the parameters that map to
      it (several for tied parameters: word embeddings and MLM decoder, MLM biases).
    """
    table: dict[str, list[tuple[str, str]]] = {}
    for hf_name, source in parameter_sources(arch.num_layers).items():
        for candidate in source.candidates:
            table.setdefault(candidate, []).append((hf_name, source.kind))
    out = {name: table[name] for name in variables if name in table}
    pooler = f"{ENCODER[0]}layer_with_weights-{arch.num_layers + 4}/"
    for name in variables:
        if name.startswith(pooler) and name[len(pooler):] in _POOLER:
            out[name] = [_POOLER[name[len(pooler):]]]
    return out


def _fresh(shape: tuple[int, ...], rng: np.random.Generator, stddev: float) -> np.ndarray:
    """Model Garden's initialization: truncated normal (2 stddev) kernels, zero biases."""
    if len(shape) == 1:
        return np.zeros(shape, np.float32)
    value = rng.normal(0.0, stddev, shape)
    outside = np.abs(value) > 2 * stddev
    while outside.any():
        value[outside] = rng.normal(0.0, stddev, int(outside.sum()))
        outside = np.abs(value) > 2 * stddev
    return value.astype(np.float32)


def _converted(hf_name: str, kind: str, tensors: dict[str, np.ndarray], name: str,
               shape: tuple[int, ...], arch: Architecture, weights_file: str) -> np.ndarray:
    """The checkpoint value of ``tensors[hf_name]``, checked against the variable's shape."""
    tensor = tensors[hf_name]
    expected = _TRANSFORMS[kind](np.broadcast_to(np.float32(0), shape)).shape
    if tuple(tensor.shape) != tuple(expected):
        raise ValueError(f"{weights_file}: tensor {hf_name} has shape {list(tensor.shape)}, "
                         f"the model ({arch.source}) expects {list(expected)} (for Model "
                         f"Garden's {name})")
    value = np.ascontiguousarray(INVERSE_TRANSFORMS[kind](tensor, arch.num_heads))
    if not np.array_equal(_TRANSFORMS[kind](value), tensor):  # the round trip is exact
        raise AssertionError(f"the inverse of {kind!r} does not give back {hf_name}")
    return value


def _nsp_status(tensors: dict[str, np.ndarray], weights_file: str) -> str:
    present = [n for n in NSP_PARAMETERS if n in tensors]
    if present and len(present) != len(NSP_PARAMETERS):
        missing = sorted(set(NSP_PARAMETERS) - set(present))
        raise ValueError(f"{weights_file} has part of the NSP head: no {', '.join(missing)}")
    return "imported" if present else "fresh"


def checkpoint_values(tensors: dict[str, np.ndarray], arch: Architecture,
                      variables: dict[str, tuple[int, ...]], *, seed: int,
                      initializer_range: float = 0.02,
                      weights_file: str = "the model") -> tuple[dict[str, Assignment], str]:
    """The value of every Model Garden variable, from ``tensors`` or fresh.

    Args:
      tensors: transformers parameter name -> array (``BertForPreTraining`` or
        ``BertForMaskedLM`` names).
      arch: the encoder's shape.
      variables: checkpoint variable name -> shape, of the model to fill.
      seed: seeds the fresh NSP head (and the encoder pooler) of a model without one.
      initializer_range: stddev of fresh kernels.
      weights_file: named in messages.

    Returns:
      (variable name -> :class:`Assignment`, ``"imported"`` or ``"fresh"`` for the NSP head).

    Raises:
      ValueError: a missing tensor, a shape mismatch, tied parameters that differ, a
        tensor no variable takes, or a variable no parameter maps to.
    """
    nsp = _nsp_status(tensors, weights_file)
    sources = inverse_sources(arch, variables)
    rng = np.random.default_rng(seed)
    out: dict[str, Assignment] = {}
    used: set[str] = set()
    for name in sorted(variables):
        shape = tuple(variables[name])
        if name not in sources:
            raise ValueError(f"no transformers parameter maps to Model Garden's {name}")
        entries = [(h, k) for h, k in sources[name] if h in tensors]
        if not entries:
            if all(h in NSP_PARAMETERS for h, _ in sources[name]) and nsp == "fresh":
                out[name] = Assignment(_fresh(shape, rng, initializer_range), ())
                continue
            wanted = " or ".join(h for h, _ in sources[name])
            raise ValueError(f"{weights_file} has no tensor {wanted} (for Model Garden's "
                             f"{name})")
        values = [_converted(h, k, tensors, name, shape, arch, weights_file)
                  for h, k in entries]
        for (hf_name, _), value in zip(entries[1:], values[1:], strict=True):
            if not np.array_equal(value, values[0]):
                raise ValueError(f"{weights_file}: {hf_name} differs from {entries[0][0]}, "
                                 f"which Model Garden ties to it ({name})")
        out[name] = Assignment(values[0], tuple(h for h, _ in entries))
        used.update(h for h, _ in entries)
    unused = sorted(set(tensors) - used)
    if unused:
        raise ValueError(f"{weights_file}: {len(unused)} tensors map to no Model Garden "
                         f"variable: {', '.join(unused[:5])} (another architecture?)")
    return out, nsp
