"""The transformers directory to import: its config, its tensors and its vocabulary."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from bertjp.vocab_files import parse_vocab
from training.convert.architecture import Architecture

__all__ = ["AGREEING_ACTS", "SourceModel", "architecture_from_config", "read_source"]

# Activations that Model Garden's gelu (the tanh approximation) computes exactly.
AGREEING_ACTS = ("gelu_pytorch_tanh", "gelu_new")
EXACT_GELU = "gelu"
_ARCHITECTURES = ("BertForPreTraining", "BertForMaskedLM")
# Weights that the checkpoint does not hold: buffers of older transformers versions.
_IGNORED = ("bert.embeddings.position_ids",)


@dataclasses.dataclass
class SourceModel:
    """A transformers BERT directory, read.

    Attributes:
      model_dir: the directory.
      config: its ``config.json``.
      architecture: the encoder's shape.
      hidden_act: ``config.json``'s activation.
      weights_file: the file the tensors came from.
      tensors: parameter name -> float32 array (``gamma``/``beta`` renamed).
      vocab_bytes: ``vocab.txt`` as read.
      tokens: its tokens.
      tokenizer_config: ``tokenizer_config.json`` as read (None when absent).
    """

    model_dir: str
    config: dict
    architecture: Architecture
    hidden_act: str
    weights_file: str
    tensors: dict[str, np.ndarray]
    vocab_bytes: bytes
    tokens: list[str]
    tokenizer_config: bytes | None


def _read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _check_config(config: dict, where: str) -> None:
    """Refuses models Model Garden's ``BertEncoder`` cannot represent."""
    problems = []
    if config.get("model_type", "bert") != "bert":
        problems.append(f"model_type {config.get('model_type')!r} (only 'bert')")
    archs = config.get("architectures") or []
    if archs and not set(archs) & set(_ARCHITECTURES):
        problems.append(f"architectures {archs} (expected {' or '.join(_ARCHITECTURES)})")
    act = config.get("hidden_act", EXACT_GELU)
    if act not in (EXACT_GELU, *AGREEING_ACTS):
        problems.append(f"hidden_act {act!r} (only gelu, {', '.join(AGREEING_ACTS)})")
    if config.get("position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type {config['position_embedding_type']!r}")
    if config.get("is_decoder") or config.get("add_cross_attention"):
        problems.append("a decoder (is_decoder / add_cross_attention)")
    if config.get("embedding_size") not in (None, config.get("hidden_size")):
        problems.append(f"embedding_size {config['embedding_size']} != hidden_size")
    if config.get("tie_word_embeddings") is False:
        problems.append("tie_word_embeddings false (Model Garden ties the MLM decoder)")
    if problems:
        raise ValueError(f"{where}: not importable into Model Garden's BertEncoder: "
                         + "; ".join(problems))


def architecture_from_config(config: dict, where: str) -> Architecture:
    """The :class:`Architecture` of a transformers BERT ``config.json`` (as a dict).

    Raises:
      ValueError: a model that is not a post-LN BERT with a gelu activation, or a
        missing size field.
    """
    _check_config(config, where)
    try:
        arch = Architecture(
            num_layers=int(config["num_hidden_layers"]), hidden_size=int(config["hidden_size"]),
            num_heads=int(config["num_attention_heads"]),
            intermediate_size=int(config["intermediate_size"]),
            vocab_size=int(config["vocab_size"]),
            max_position_embeddings=int(config.get("max_position_embeddings", 512)),
            type_vocab_size=int(config.get("type_vocab_size", 2)), source=where)
    except KeyError as err:
        raise ValueError(f"{where} has no {err.args[0]!r}") from None
    if arch.hidden_size % arch.num_heads:
        raise ValueError(f"{where}: hidden_size {arch.hidden_size} is not a multiple of "
                         f"num_attention_heads {arch.num_heads}")
    return arch


def _renamed(name: str) -> str:
    """Older checkpoints' LayerNorm ``gamma``/``beta`` -> ``weight``/``bias``."""
    if name.endswith(".gamma"):
        return name[: -len("gamma")] + "weight"
    if name.endswith(".beta"):
        return name[: -len("beta")] + "bias"
    return name


def _load_tensors(model_dir: str) -> tuple[str, dict[str, np.ndarray]]:
    """(the weights file, name -> float32 numpy array) of ``model.safetensors`` or
    ``pytorch_model.bin``."""
    safetensors = os.path.join(model_dir, "model.safetensors")
    binary = os.path.join(model_dir, "pytorch_model.bin")
    if os.path.isfile(safetensors):
        from safetensors.numpy import load_file

        path, raw = safetensors, None
        try:
            raw = load_file(safetensors)
        except (TypeError, ValueError):  # bfloat16 has no numpy dtype
            from safetensors.torch import load_file as load_torch

            raw = {k: v.float().numpy() for k, v in load_torch(safetensors).items()}
    elif os.path.isfile(binary):
        import torch

        path = binary
        state = torch.load(binary, map_location="cpu", weights_only=True)
        raw = {k: v.float().numpy() for k, v in state.items()}
    else:
        raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {model_dir} "
                                "(a sharded model: save it as one file first)")
    tensors = {}
    for name, value in raw.items():
        if name in _IGNORED:
            continue
        tensors[_renamed(name)] = np.asarray(value, dtype=np.float32)
    return path, tensors


def read_source(model_dir: str) -> SourceModel:
    """Reads a local transformers BERT directory.

    Raises:
      FileNotFoundError: no such directory, no ``config.json``, no weights file or no
        ``vocab.txt``.
      ValueError: an unsupported model, or a vocabulary of another size than the model's.
    """
    if "://" in model_dir:
        raise ValueError(f"--model {model_dir}: a local directory only (download it first)")
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"--model {model_dir}: no such directory")
    config_path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"no config.json in {model_dir}")
    config = _read_json(config_path)
    arch = architecture_from_config(config, config_path)
    vocab_path = os.path.join(model_dir, "vocab.txt")
    if not os.path.isfile(vocab_path):
        raise FileNotFoundError(f"no vocab.txt in {model_dir}")
    with open(vocab_path, "rb") as f:
        vocab_bytes = f.read()
    tokens = parse_vocab(vocab_bytes)
    if len(tokens) != arch.vocab_size:
        raise ValueError(f"{vocab_path} has {len(tokens)} tokens, {config_path} says "
                         f"vocab_size {arch.vocab_size}")
    tok_path = os.path.join(model_dir, "tokenizer_config.json")
    tokenizer_config = None
    if os.path.isfile(tok_path):
        with open(tok_path, "rb") as f:
            tokenizer_config = f.read()
    weights_file, tensors = _load_tensors(model_dir)
    return SourceModel(model_dir=model_dir, config=config, architecture=arch,
                       hidden_act=str(config.get("hidden_act", EXACT_GELU)),
                       weights_file=weights_file, tensors=tensors, vocab_bytes=vocab_bytes,
                       tokens=tokens, tokenizer_config=tokenizer_config)
