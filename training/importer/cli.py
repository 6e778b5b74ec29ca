"""``bertjp import``'s command line: the parser and :func:`main`."""

from __future__ import annotations

import argparse
import os
import sys

from training.importer.driver import import_model

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertjp import", allow_abbrev=False,
        description="Import a transformers BERT directory (BertForPreTraining or "
        "BertForMaskedLM: config.json, model.safetensors or pytorch_model.bin, vocab.txt, "
        "tokenizer_config.json) as a TF Model Garden bert/pretraining checkpoint "
        "(OUTPUT/ckpt-0, params.yaml, the vocabulary files), to continue pretraining it "
        "with `bertjp train` or to read it with `bertjp convert`.",
        epilog="Example: bertjp import --model models/bert-base-japanese-v3 "
        "--output runs/v3-imported")
    parser.add_argument("--model", required=True, metavar="DIR",
                        help="a local transformers BERT directory (no download)")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="local output directory (written whole at the end, or not at all)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the fresh NSP head given to a model without one "
                        "(BertForMaskedLM); default 0")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty --output directory")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's log messages (and the traceback on errors)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``bertjp import``: returns 0; raises with a one-line message on user errors."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import_model(args.model, args.output, seed=args.seed, overwrite=args.overwrite,
                 log=lambda line: print(line, flush=True))
    return 0
