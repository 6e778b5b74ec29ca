"""The import itself: read the transformers directory, fill the Model Garden model, write."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from typing import Callable

from training.convert.architecture import Architecture, describe
from training.importer import garden
from training.importer.activation import SENTENCE, gelu_difference
from training.importer.mapping import checkpoint_values
from training.importer.source import AGREEING_ACTS, read_source

__all__ = ["ImportResult", "import_model"]

_MODEL_GARDEN_EPS = 1e-12  # the LayerNorm epsilon BertEncoder hard-codes


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """What :func:`import_model` wrote.

    Attributes:
      output: the output directory.
      checkpoint: the checkpoint prefix (``OUTPUT/ckpt-0``), for ``task.init_checkpoint``
        or ``bertjp convert --checkpoint`` (which also takes ``OUTPUT``).
      params_yaml: ``OUTPUT/params.yaml``, the experiment config.
      vocab_dir: the directory with ``vocab.txt`` (and ``tokenizer_config.json``): OUTPUT.
      architecture: the encoder's shape (``source``: the model's ``config.json``).
      size: the ``training.configs.model_size`` name of that shape, or None.
      vocab_size: tokens in the vocabulary.
      max_position_embeddings: rows of the position embedding table.
      nsp_head: ``"imported"`` or ``"fresh"`` (a model without one: seeded initialization).
      hidden_act: the model's ``config.json`` activation.
      gelu_difference: for ``hidden_act: gelu``, the measured max |MLM logit difference|
        between exact gelu and Model Garden's tanh approximation; else None.
      variables: checkpoint variables written.
      warnings: the warnings logged.
    """

    output: str
    checkpoint: str
    params_yaml: str
    vocab_dir: str
    architecture: Architecture
    size: str | None
    vocab_size: int
    max_position_embeddings: int
    nsp_head: str
    hidden_act: str
    gelu_difference: float | None
    variables: int
    warnings: tuple[str, ...]


def _check_output(output: str, overwrite: bool) -> None:
    if "://" in output:
        raise ValueError(f"--output {output}: write to a local directory, then copy it "
                         "(gcloud storage cp -r)")
    if os.path.exists(output) and not os.path.isdir(output):
        raise FileExistsError(f"--output {output} exists and is not a directory")
    if os.path.isdir(output) and os.listdir(output) and not overwrite:
        raise FileExistsError(f"--output {output} exists and is not empty "
                              "(pass --overwrite to replace it)")


def _write_files(directory: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def _move_into_place(staging: str, output: str) -> None:
    """Renames ``staging`` to ``output``, replacing an existing ``output``."""
    old = None
    if os.path.exists(output):
        old = staging + ".old"
        os.rename(output, old)
    os.rename(staging, output)
    if old:
        shutil.rmtree(old)


def _activation_warning(source, warnings: list[str], log) -> float | None:
    """The measured gelu difference (None for a tanh gelu); warns of it."""
    if source.hidden_act in AGREEING_ACTS:
        log(f"hidden_act {source.hidden_act}: the function Model Garden's gelu computes")
        return None
    diff = gelu_difference(source.config, source.tensors, source.tokens,
                           source.tokenizer_config)
    line = (f"warning: config.json says hidden_act gelu (exact erf); Model Garden's gelu is "
            f"the tanh approximation (transformers' gelu_pytorch_tanh), so the imported "
            f"model's MLM logits differ from this model's by up to {diff:.2e} (measured on "
            f"{SENTENCE!r}); `bertjp convert` writes hidden_act gelu_pytorch_tanh unless "
            f"given --hidden-act gelu")
    log(line)
    warnings.append(line)
    return diff


def import_model(model_dir: str, output_dir: str, *, seed: int = 0, overwrite: bool = False,
                 log: Callable[[str], None] = print) -> ImportResult:
    """Imports a transformers BERT directory as a Model Garden ``bert/pretraining``
    checkpoint.

    Args:
      model_dir: a local transformers directory: ``config.json``, ``model.safetensors``
        or ``pytorch_model.bin`` (``BertForPreTraining`` or ``BertForMaskedLM``),
        ``vocab.txt`` and ``tokenizer_config.json``.
      output_dir: local directory for ``ckpt-0``, ``checkpoint``, ``params.yaml``,
        ``vocab.txt`` and ``tokenizer_config.json``; written whole or not at all.
      seed: seeds the fresh NSP head of a model that has none.
      overwrite: replace a non-empty ``output_dir``.
      log: progress printer.

    Returns:
      An :class:`ImportResult`.

    Raises:
      FileNotFoundError, FileExistsError, ValueError: with a one-line explanation;
        nothing is written then.
    """
    output_dir = os.path.normpath(output_dir)
    _check_output(output_dir, overwrite)
    source = read_source(model_dir)
    arch = source.architecture
    log(f"model {source.weights_file}: {len(source.tensors)} tensors")
    log(f"architecture: {describe(arch)}")
    warnings: list[str] = []
    eps = float(source.config.get("layer_norm_eps", _MODEL_GARDEN_EPS))
    if eps != _MODEL_GARDEN_EPS:
        warnings.append(f"warning: config.json says layer_norm_eps {eps:g}; Model Garden's "
                        f"BertEncoder uses {_MODEL_GARDEN_EPS:g}")
        log(warnings[-1])
    from training import configs

    config = garden.experiment_config(arch)
    model = garden.build_model(config)
    root = garden.checkpoint_root(model)
    variables = garden.model_variables(root)
    shapes = {name: tuple(v.shape) for name, v in variables.items()}
    values, nsp = checkpoint_values(
        source.tensors, arch, shapes, seed=seed,
        initializer_range=float(source.config.get("initializer_range", 0.02)),
        weights_file=source.weights_file)
    diff = _activation_warning(source, warnings, log)  # after the tensors are checked
    fresh = sorted(name for name, a in values.items() if not a.parameters)
    if nsp == "fresh":
        line = (f"note: the model has no NSP head (pooler and seq_relationship): a fresh one, "
                f"seeded with {seed}, for {len(fresh)} variables: {', '.join(fresh)}")
        log(line)
        warnings.append(line)
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".import-", dir=parent)
    try:
        garden.write_checkpoint(root, variables, {n: a.value for n, a in values.items()},
                                staging)
        files = {"params.yaml": configs.to_yaml(config).encode("utf-8"),
                 "vocab.txt": source.vocab_bytes}
        if source.tokenizer_config is not None:
            files["tokenizer_config.json"] = source.tokenizer_config
        _write_files(staging, files)
        os.chmod(staging, 0o777 & ~_umask())
        _move_into_place(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    prefix = os.path.join(output_dir, garden.CHECKPOINT_NAME)
    log(f"wrote {prefix} ({len(values)} variables; NSP head {nsp}), params.yaml, vocab.txt"
        + (", tokenizer_config.json" if source.tokenizer_config is not None else "")
        + f" to {output_dir}")
    return ImportResult(
        output=output_dir, checkpoint=prefix, params_yaml=os.path.join(output_dir, "params.yaml"),
        vocab_dir=output_dir, architecture=arch, size=garden.matching_size(arch),
        vocab_size=arch.vocab_size, max_position_embeddings=arch.max_position_embeddings,
        nsp_head=nsp, hidden_act=source.hidden_act, gelu_difference=diff,
        variables=len(values), warnings=tuple(warnings))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
