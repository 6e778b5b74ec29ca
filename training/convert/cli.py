"""``bertjp convert``'s command line: the parser and :func:`main`."""

from __future__ import annotations

import argparse
import os
import sys

from training.convert.driver import convert
from training.convert.writer import GELU_NOTE, HIDDEN_ACTS

__all__ = ["main"]


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
    parser.add_argument("--hidden-act", default="gelu_pytorch_tanh", choices=HIDDEN_ACTS,
                        help=f"hidden_act written to config.json (default gelu_pytorch_tanh: "
                        f"the function the model was trained with; the released v3 configs say "
                        f"gelu). {GELU_NOTE}")
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
