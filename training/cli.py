"""``bertjp train local|tpu`` and ``bertjp convert``: dispatch to the training modules.

Each module is imported only when its subcommand runs (TensorFlow and the Cloud
TPU client are heavy), so ``bertjp train --help`` answers at once.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["train_main"]

SUBCOMMANDS = {
    "local": ("training.local", "train on this machine (CPU, or a GPU when present)"),
    "tpu": ("training.tpu", "train on a Cloud TPU VM: create it, run both stages, delete it"),
}

USAGE = """usage: bertjp train {{local,tpu}} [options]   (bertjp train SUBCOMMAND --help)

Pretrain a BERT with TF Model Garden's bert/pretraining experiment on pretraining-data shards.

subcommands:
{rows}

Both check the shards' manifest against the experiment first; --preflight-only stops there."""


def train_main(argv: list[str]) -> int:
    """``bertjp train SUBCOMMAND ...``."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        rows = "\n".join(f"  {name:<6} {help_}" for name, (_, help_) in SUBCOMMANDS.items())
        print(USAGE.format(rows=rows))
        return 0
    if argv[0] not in SUBCOMMANDS:
        print(f"bertjp train: unknown subcommand {argv[0]!r} (local or tpu)", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    return module.main(argv[1:])
