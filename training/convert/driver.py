"""The conversion itself: inputs, architecture, weights, then the output directory."""

from __future__ import annotations

from typing import Callable

from training.convert.architecture import describe, resolve_architecture
from training.convert.checkpoint import CheckpointReader, is_training_state
from training.convert.inputs import find_checkpoint, read_vocab_dir, subword_type
from training.convert.mapping import check_layers, leftovers, load_weights
from training.convert.writer import HIDDEN_ACTS, bert_config, write_output

__all__ = ["convert"]


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
    if hidden_act not in HIDDEN_ACTS:
        raise ValueError(f"hidden_act {hidden_act!r}: use one of {', '.join(HIDDEN_ACTS)}")
    prefix = find_checkpoint(checkpoint)
    vocab_bytes, tokens, tokenizer_config = read_vocab_dir(vocab_dir)
    subword = subword_type(tokens, tokenizer_config)
    arch = resolve_architecture(prefix, size, len(tokens))
    ckpt = CheckpointReader(prefix)
    log(f"checkpoint {prefix}: {len(ckpt.shapes)} variables")
    log(f"architecture: {describe(arch)}")
    check_layers(ckpt, arch)
    from transformers import BertForPreTraining

    model = BertForPreTraining(bert_config(arch, hidden_act)).eval()
    used = load_weights(model, ckpt, arch)
    skipped, unused = leftovers(ckpt, used, arch)
    parameters = sum(p.numel() for p in model.parameters())
    state = sum(map(is_training_state, ckpt.shapes))
    log(f"mapped {len(used)} checkpoint variables to {parameters:,} parameters; skipped the "
        f"encoder's untrained pooler ({len(skipped)} variables) and {state} optimizer and "
        "counter variables")
    if unused:
        log(f"warning: {len(unused)} unused checkpoint variables: {', '.join(unused)}")
    write_output(model, output, overwrite=overwrite, vocab_bytes=vocab_bytes, tokens=tokens,
                 subword=subword, tokenizer_config=tokenizer_config,
                 model_max_length=arch.max_position_embeddings)
    log(f"wrote BertForPreTraining ({parameters:,} parameters, hidden_act {hidden_act}) and "
        f"a BertJapaneseTokenizer ({subword}) to {output}")
    return {"output": output, "checkpoint": prefix, "parameters": parameters,
            "architecture": arch, "subword": subword, "skipped": skipped, "unused": unused}
