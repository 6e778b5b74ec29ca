"""Writing the transformers directory: the model (safetensors), config.json, tokenizer."""

from __future__ import annotations

import json
import os

from training.convert.architecture import Architecture

__all__ = ["GELU_NOTE", "HIDDEN_ACTS", "bert_config", "write_output"]

HIDDEN_ACTS = ("gelu", "gelu_pytorch_tanh", "gelu_new")
GELU_NOTE = ("Model Garden's 'gelu' is the tanh approximation, which transformers' "
             "'gelu_pytorch_tanh' (or the slower 'gelu_new') reproduces exactly; 'gelu' is "
             "the exact erf form, as in the released v3 configs: it differs by at most "
             "4.7e-4 per activation")


def bert_config(arch: Architecture, hidden_act: str):
    """The transformers ``BertConfig`` of ``arch`` with ``hidden_act``."""
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
    """``tokenizer_config.json`` for ``BertJapaneseTokenizer``.

    It names the vocab dir's MeCab dictionary when it names one, else unidic-lite.
    """
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


def write_output(model, output: str, *, overwrite: bool, vocab_bytes: bytes,
                 tokens: list[str], subword: str, tokenizer_config: dict | None,
                 model_max_length: int) -> None:
    """Writes ``model`` and its tokenizer files into the local directory ``output``.

    Args:
      model: the ``BertForPreTraining`` to save (safetensors and config.json).
      output: local directory, created when missing.
      overwrite: replace files in a non-empty ``output``.
      vocab_bytes: ``vocab.txt`` as read from the vocabulary directory.
      tokens: its tokens.
      subword: ``wordpiece`` or ``character``.
      tokenizer_config: the vocabulary directory's ``tokenizer_config.json`` (or None).
      model_max_length: the tokenizer's ``model_max_length``.

    Raises:
      ValueError: a ``gs://`` output.
      FileExistsError: a non-empty ``output`` without ``overwrite``.
    """
    _prepare_output(output, overwrite)
    model.save_pretrained(output)
    _follow_umask(output)
    _write_tokenizer(output, vocab_bytes, _tokenizer_config(
        tokens, subword, tokenizer_config, model_max_length))
