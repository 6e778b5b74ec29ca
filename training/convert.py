"""``bertjp convert``: a Model Garden TF2 BERT checkpoint -> a transformers directory.

The input is a checkpoint of the ``bert/pretraining`` experiment (``BertPretrainerV2``
with a ``BertEncoder`` and the ``next_sentence`` classification head) as Model Garden's
trainer writes it: ``tf.train.Checkpoint(global_step, model, optimizer, encoder,
masked_lm, next_sentence.pooler_dense)`` saved as ``MODEL_DIR/ckpt-N``, with the
experiment's ``params.yaml`` beside it. The output is a transformers
``BertForPreTraining`` (PyTorch, safetensors) with its ``config.json``, plus the
tokenizer files (``vocab.txt`` and a ``BertJapaneseTokenizer`` ``tokenizer_config.json``),
so ``AutoModel*.from_pretrained(OUT)`` and ``AutoTokenizer.from_pretrained(OUT)`` work.

transformers 5 has no TensorFlow loader, so the variables are read with
``tf.train.load_checkpoint`` and mapped explicitly (recipe §10):

* ``masked_lm/embedding_table`` -> word embeddings and the tied MLM decoder;
  ``encoder/layer_with_weights-1/-2/-3`` -> position and token type embeddings and the
  embeddings LayerNorm; ``-4 ... -(L+3)`` -> the L transformer layers (q/k/v kernels
  ``[H, heads, dh]`` and the attention output kernel ``[heads, dh, H]`` become
  ``[H, H]``; every kernel is transposed to PyTorch's ``[out, in]``);
* ``masked_lm/dense|layer_norm|output_bias`` -> ``cls.predictions``;
* the NSP head's ``pooler_dense`` -> ``bert.pooler.dense`` and its ``out_proj`` ->
  ``cls.seq_relationship``. The encoder's own pooler (``-(L+4)``) is never trained in
  ``bert/pretraining`` and is skipped, as are optimizer slots and counters.

Every model parameter must be written exactly once from a checkpoint variable of the
expected shape; anything else is an error naming the variable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from typing import Callable

import numpy as np

from bertjp.vocab_files import parse_vocab

__all__ = [
    "Architecture",
    "TensorSource",
    "architecture_from_params",
    "architecture_from_size",
    "convert",
    "find_checkpoint",
    "main",
    "parameter_sources",
    "read_vocab_dir",
    "subword_type",
]

_VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"
# Checkpoint prefixes of each part: first as Model Garden's trainer saves them (the
# model's checkpoint_items at the top level), then as tf.train.Checkpoint(model=model).
_ENCODER = ("encoder/", "model/encoder_network/")
_MLM = ("masked_lm/", "model/masked_lm/")
_NSP_POOLER = ("next_sentence..pooler_dense", "model/classification_heads/0/dense")
_NSP_OUT = ("model/classification_heads/0/out_proj",)
_NSP_HEAD_NAME = "next_sentence"
_NOT_WEIGHTS = ("optimizer/", "global_step", "save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH")
_HIDDEN_ACTS = ("gelu", "gelu_pytorch_tanh", "gelu_new")
_GELU_NOTE = ("Model Garden's 'gelu' is the tanh approximation, which transformers' "
              "'gelu_pytorch_tanh' (or the slower 'gelu_new') reproduces exactly; 'gelu' is "
              "the exact erf form, as in the released v3 configs: it differs by at most "
              "4.7e-4 per activation")


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


# --------------------------------------------------------------------------- inputs


def find_checkpoint(path: str) -> str:
    """The checkpoint prefix of a model dir (its latest checkpoint) or of a prefix.

    Raises:
      FileNotFoundError: when there is no checkpoint at ``path``.
    """
    import tensorflow as tf

    path = path.rstrip("/") if len(path) > 1 else path
    if path.endswith(".index"):
        path = path[: -len(".index")]
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(
                f"no checkpoint in {path} (expected a 'checkpoint' file and ckpt-N.index, "
                "as Model Garden's trainer writes them)")
        return latest
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"no checkpoint at {path} (neither a directory nor a "
                                f"checkpoint prefix with {path}.index)")
    return path


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


def read_vocab_dir(vocab_dir: str) -> tuple[bytes, list[str], dict | None]:
    """``vocab.txt`` bytes, its tokens and the ``tokenizer_config.json`` (or None).

    Raises:
      FileNotFoundError: when ``vocab_dir/vocab.txt`` does not exist.
    """
    import tensorflow as tf

    path = os.path.join(vocab_dir, "vocab.txt")
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"no vocab.txt in {vocab_dir}")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    tokens = parse_vocab(data)
    config_path = os.path.join(vocab_dir, "tokenizer_config.json")
    config = None
    if tf.io.gfile.exists(config_path):
        with tf.io.gfile.GFile(config_path, "r") as f:
            config = json.loads(f.read())
    return data, tokens, config


def subword_type(tokens: list[str], tokenizer_config: dict | None) -> str:
    """``character`` when the vocab dir's config says so or no token starts with ``##``."""
    if tokenizer_config and tokenizer_config.get("subword_tokenizer_type"):
        return str(tokenizer_config["subword_tokenizer_type"])
    return "wordpiece" if any(t.startswith("##") for t in tokens) else "character"


# --------------------------------------------------------------------------- mapping


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
    block = _under(_ENCODER, f"layer_with_weights-{index + 4}/")
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
    word = TensorSource(_under(_MLM, "embedding_table")
                        + _under(_ENCODER, "layer_with_weights-0/embeddings"))
    out = {
        "bert.embeddings.word_embeddings.weight": word,
        "cls.predictions.decoder.weight": word,
        "bert.embeddings.position_embeddings.weight":
            TensorSource(_under(_ENCODER, "layer_with_weights-1/embeddings")),
        "bert.embeddings.token_type_embeddings.weight":
            TensorSource(_under(_ENCODER, "layer_with_weights-2/embeddings")),
    }
    return out | _prefixed("bert.embeddings.LayerNorm",
                           _norm(_under(_ENCODER, "layer_with_weights-3")))


def _head_sources() -> dict[str, TensorSource]:
    bias = TensorSource(_under(_MLM, "output_bias.Sbias"))
    out = {"cls.predictions.bias": bias, "cls.predictions.decoder.bias": bias}
    out |= _prefixed("cls.predictions.transform.dense", _dense(_under(_MLM, "dense")))
    out |= _prefixed("cls.predictions.transform.LayerNorm", _norm(_under(_MLM, "layer_norm")))
    out |= _prefixed("bert.pooler.dense", _dense(_NSP_POOLER))
    return out | _prefixed("cls.seq_relationship", _dense(_NSP_OUT))


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


# --------------------------------------------------------------------------- checkpoint


class _Checkpoint:
    """The variables of a TF2 object-based checkpoint, by name without the suffix."""

    def __init__(self, prefix: str):
        import tensorflow as tf

        self.prefix = prefix
        self._reader = tf.train.load_checkpoint(prefix)
        shapes = self._reader.get_variable_to_shape_map()
        self.shapes = {name[: -len(_VALUE)]: tuple(shape) for name, shape in shapes.items()
                       if name.endswith(_VALUE)}

    def resolve(self, source: TensorSource) -> str | None:
        """The first candidate of ``source`` present in the checkpoint."""
        return next((name for name in source.candidates if name in self.shapes), None)

    def read(self, name: str) -> np.ndarray:
        """The value of variable ``name`` as float32."""
        return np.asarray(self._reader.get_tensor(name + _VALUE), dtype=np.float32)

    def transformer_layers(self) -> list[int]:
        """Indices N of ``encoder/layer_with_weights-N`` that are transformer blocks."""
        for prefix in _ENCODER:
            block = re.compile(re.escape(prefix) + r"layer_with_weights-(\d+)/_attention_layer/")
            found = {int(m.group(1)) for m in map(block.match, self.shapes) if m}
            if found:
                return sorted(found)
        return []


def _is_training_state(name: str) -> bool:
    """Optimizer slots and state, step counters: never part of the model."""
    return name.startswith(_NOT_WEIGHTS) or "/.OPTIMIZER_SLOT/" in name


def _check_layers(ckpt: _Checkpoint, arch: Architecture) -> None:
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


def _load_weights(model, ckpt: _Checkpoint, arch: Architecture) -> set[str]:
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
        name = ckpt.resolve(source)
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


def _leftovers(ckpt: _Checkpoint, used: set[str], arch: Architecture) -> tuple[list, list]:
    """(skipped encoder pooler variables, other unused model variables)."""
    pooler = _under(_ENCODER, f"layer_with_weights-{arch.num_layers + 4}/")
    rest = [n for n in sorted(ckpt.shapes) if n not in used and not _is_training_state(n)]
    skipped = [n for n in rest if n.startswith(pooler)]
    return skipped, [n for n in rest if not n.startswith(pooler)]


# --------------------------------------------------------------------------- outputs


def _bert_config(arch: Architecture, hidden_act: str):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=arch.vocab_size, hidden_size=arch.hidden_size,
        num_hidden_layers=arch.num_layers, num_attention_heads=arch.num_heads,
        intermediate_size=arch.intermediate_size, hidden_act=hidden_act,
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        max_position_embeddings=arch.max_position_embeddings,
        type_vocab_size=arch.type_vocab_size, initializer_range=0.02, layer_norm_eps=1e-12,
        pad_token_id=0, architectures=["BertForPreTraining"])


def _tokenizer_config(tokens: list[str], subword: str, source: dict | None,
                      model_max_length: int) -> bytes:
    """``tokenizer_config.json`` for ``BertJapaneseTokenizer`` (the vocab dir's MeCab
    dictionary when it names one, else unidic-lite)."""
    from bertjp.vocab_files import tokenizer_files

    kwargs = (source or {}).get("mecab_kwargs") or {}
    packaged = kwargs.get("mecab_dic") in ("unidic_lite", "ipadic")
    dictionary = kwargs["mecab_dic"] if packaged else "unidic-lite"
    data = tokenizer_files(tokens, subword, dictionary, model_max_length)["tokenizer_config.json"]
    if kwargs and not packaged:  # a dictionary directory: keep the vocab dir's option
        config = json.loads(data) | {"mecab_kwargs": kwargs}
        data = (json.dumps(config, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    return data


def _prepare_output(output: str, overwrite: bool) -> None:
    if output.startswith("gs://"):
        raise ValueError(f"--output {output}: write to a local directory, then copy it "
                         "(gcloud storage cp -r)")
    if os.path.isdir(output) and os.listdir(output) and not overwrite:
        raise FileExistsError(f"--output {output} exists and is not empty "
                              "(pass --overwrite to replace its files)")
    os.makedirs(output, exist_ok=True)


def _umask() -> int:
    """This process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _follow_umask(output: str) -> None:
    """Gives the ``*.safetensors`` files in ``output`` the mode a plain ``open()`` file gets.

    safetensors writes through a private temporary file, so its files come out 0600
    whatever the umask, unlike the JSON and vocabulary files beside them.
    """
    mode = 0o666 & ~_umask()
    for name in os.listdir(output):
        if name.endswith(".safetensors"):
            os.chmod(os.path.join(output, name), mode)


def _write_tokenizer(output: str, vocab_bytes: bytes, config: bytes) -> None:
    for name, data in (("vocab.txt", vocab_bytes), ("tokenizer_config.json", config)):
        with open(os.path.join(output, name), "wb") as f:
            f.write(data)


# --------------------------------------------------------------------------- driver


def _architecture(checkpoint: str, size: str | None, vocab_size: int) -> Architecture:
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


def _describe(arch: Architecture) -> str:
    return (f"{arch.num_layers} layers, hidden {arch.hidden_size}, {arch.num_heads} heads, "
            f"intermediate {arch.intermediate_size}, vocab {arch.vocab_size} "
            f"(from {arch.source})")


def convert(checkpoint: str, vocab_dir: str, output: str, size: str | None = None,
            hidden_act: str = "gelu_pytorch_tanh", overwrite: bool = False,
            log: Callable[[str], None] = print) -> dict:
    """Converts a Model Garden ``bert/pretraining`` checkpoint to a transformers dir.

    Args:
      checkpoint: a model dir (its latest ``ckpt-N``) or a checkpoint prefix.
      vocab_dir: the vocabulary directory the model was trained with.
      output: local directory for the model, config and tokenizer files.
      size: a ``training.configs.model_size`` name; when None, the architecture comes
        from ``params.yaml`` beside the checkpoint. When given, it wins over params.yaml.
      hidden_act: transformers' activation name for config.json (see ``--help``).
      overwrite: replace files in a non-empty ``output``.
      log: progress printer.

    Returns:
      A summary: ``output``, ``checkpoint``, ``parameters``, ``architecture``,
      ``subword``, ``skipped`` and ``unused`` (checkpoint variable names).

    Raises:
      FileNotFoundError, FileExistsError, ValueError: with a one-line explanation.
    """
    if hidden_act not in _HIDDEN_ACTS:
        raise ValueError(f"hidden_act {hidden_act!r}: use one of {', '.join(_HIDDEN_ACTS)}")
    prefix = find_checkpoint(checkpoint)
    vocab_bytes, tokens, tokenizer_config = read_vocab_dir(vocab_dir)
    subword = subword_type(tokens, tokenizer_config)
    arch = _architecture(prefix, size, len(tokens))
    ckpt = _Checkpoint(prefix)
    log(f"checkpoint {prefix}: {len(ckpt.shapes)} variables")
    log(f"architecture: {_describe(arch)}")
    _check_layers(ckpt, arch)
    from transformers import BertForPreTraining

    model = BertForPreTraining(_bert_config(arch, hidden_act)).eval()
    used = _load_weights(model, ckpt, arch)
    skipped, unused = _leftovers(ckpt, used, arch)
    parameters = sum(p.numel() for p in model.parameters())
    state = sum(map(_is_training_state, ckpt.shapes))
    log(f"mapped {len(used)} checkpoint variables to {parameters:,} parameters; skipped the "
        f"encoder's untrained pooler ({len(skipped)} variables) and {state} optimizer and "
        "counter variables")
    if unused:
        log(f"warning: {len(unused)} unused checkpoint variables: {', '.join(unused)}")
    _prepare_output(output, overwrite)
    model.save_pretrained(output)
    _follow_umask(output)
    _write_tokenizer(output, vocab_bytes, _tokenizer_config(
        tokens, subword, tokenizer_config, arch.max_position_embeddings))
    log(f"wrote BertForPreTraining ({parameters:,} parameters, hidden_act {hidden_act}) and "
        f"a BertJapaneseTokenizer ({subword}) to {output}")
    return {"output": output, "checkpoint": prefix, "parameters": parameters,
            "architecture": arch, "subword": subword, "skipped": skipped, "unused": unused}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertjp convert", allow_abbrev=False,
        description="Convert a TF Model Garden bert/pretraining checkpoint (BertPretrainerV2: "
        "BertEncoder + masked LM + next_sentence head) into a transformers "
        "BertForPreTraining directory (PyTorch safetensors, config.json, vocab.txt, "
        "tokenizer_config.json for BertJapaneseTokenizer with MeCab unidic-lite).",
        epilog="Example: bertjp convert --checkpoint runs/base/stage2 --vocab vocab/wordpiece "
        "--output models/bert-base-japanese")
    parser.add_argument("--checkpoint", required=True, metavar="DIR_OR_CKPT",
                        help="the model dir of a training run (its latest ckpt-N is used) or "
                        "a checkpoint prefix such as DIR/ckpt-20000; local or gs://")
    parser.add_argument("--vocab", required=True, metavar="DIR",
                        help="the vocabulary directory the model was trained with (vocab.txt, "
                        "tokenizer_config.json from `bertjp train-vocab`); its subword type is "
                        "read from tokenizer_config.json, else character when no token "
                        "starts with ##")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="local output directory (created)")
    parser.add_argument("--size", metavar="NAME",
                        help="model size (base, large, tiny, mini, small, medium, L4_H256...); "
                        "default: read the architecture from params.yaml beside the "
                        "checkpoint, which Model Garden writes into the model dir; when given, "
                        "it overrides params.yaml (the vocabulary size is vocab.txt's)")
    parser.add_argument("--hidden-act", default="gelu_pytorch_tanh", choices=_HIDDEN_ACTS,
                        help=f"hidden_act written to config.json (default gelu_pytorch_tanh: "
                        f"the function the model was trained with; the released v3 configs say "
                        f"gelu). {_GELU_NOTE}")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files of a non-empty --output directory")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's log messages (and the traceback on errors)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``bertjp convert``: returns 0; raises with a one-line message on user errors."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    convert(args.checkpoint, args.vocab, args.output, size=args.size,
            hidden_act=args.hidden_act, overwrite=args.overwrite,
            log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
