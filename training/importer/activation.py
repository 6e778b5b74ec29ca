"""The exact-gelu check: how far Model Garden's tanh gelu moves the model's logits."""

from __future__ import annotations

import json

import numpy as np

from training.convert.inputs import subword_type

__all__ = ["SENTENCE", "gelu_difference"]

SENTENCE = "東北大学で自然言語処理の研究をしています。"


def _input_ids(tokens: list[str], tokenizer_config: bytes | None, text: str) -> list[int]:
    from bertjp.tokenization import JapaneseTokenizer

    config = json.loads(tokenizer_config) if tokenizer_config else None
    tokenizer = JapaneseTokenizer(tokens, subword=subword_type(tokens, config),
                                  do_lower_case=bool((config or {}).get("do_lower_case")))
    _, ids = tokenizer.encode(text)
    ids_of = {t: i for i, t in enumerate(tokens)}
    return [ids_of["[CLS]"], *ids, ids_of["[SEP]"]]


def _mlm_logits(config: dict, tensors: dict[str, np.ndarray], hidden_act: str,
                ids: list[int]) -> np.ndarray:
    import torch
    from transformers import BertConfig, BertForMaskedLM

    fields = {k: v for k, v in config.items() if k not in ("architectures", "hidden_act")}
    model = BertForMaskedLM(BertConfig(**fields, hidden_act=hidden_act)).eval()
    state = {k: torch.from_numpy(v) for k, v in tensors.items()
             if not k.startswith(("bert.pooler.", "cls.seq_relationship."))}
    model.load_state_dict(state, strict=False)
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]))
    return out.logits.numpy()


def gelu_difference(config: dict, tensors: dict[str, np.ndarray], tokens: list[str],
                    tokenizer_config: bytes | None, text: str = SENTENCE) -> float:
    """Max |MLM logit difference| between exact gelu and its tanh approximation.

    Args:
      config: the model's ``config.json``.
      tensors: its parameters.
      tokens: its vocabulary.
      tokenizer_config: its ``tokenizer_config.json`` bytes (subword type, lower case).
      text: the sentence measured on (tokenized with ``bertjp.tokenization``).
    """
    ids = _input_ids(tokens, tokenizer_config, text)
    exact = _mlm_logits(config, tensors, "gelu", ids)
    approx = _mlm_logits(config, tensors, "gelu_pytorch_tanh", ids)
    return float(np.abs(exact - approx).max())
