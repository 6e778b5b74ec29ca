"""The training loop of ``bertjp finetune``: batches, AdamW with JGLUE's schedule,
per-epoch checkpoints to resume from, and prediction (see :mod:`evaluation.finetune`).

A plain PyTorch loop rather than ``transformers.Trainer`` (which needs ``accelerate``,
not installed): AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0), linear decay after a
linear warmup over ``ceil(warmup_ratio × steps)`` steps, gradient-norm clipping at 1.0,
fp32 on CPU or one GPU. Batches are padded to their longest input and shuffled with a
generator seeded by the seed and the epoch, so a resumed run sees the same batches.
"""

from __future__ import annotations

import math
import os
import random
import time
from typing import Any, Callable, Sequence

__all__ = ["ADAM_EPS", "CLIP_NORM", "collate", "device_of", "predict", "seed_everything",
           "train_epochs"]

CLIP_NORM = 1.0
ADAM_EPS = 1e-8


def _pad(rows: list[list[int]], length: int) -> list[list[int]]:
    return [row + [0] * (length - len(row)) for row in rows]


def collate(items: Sequence[dict[str, Any]], with_targets: bool = True) -> dict[str, Any]:
    """Tensors of a batch, padded to its longest input (``attention_mask`` 1 on tokens)."""
    import torch

    multiple = isinstance(items[0]["input_ids"][0], list)
    if multiple:
        length = max(len(r) for item in items for r in item["input_ids"])
        ids = [_pad(item["input_ids"], length) for item in items]
        types = [_pad(item["token_type_ids"], length) for item in items]
        mask = [_pad([[1] * len(r) for r in item["input_ids"]], length) for item in items]
    else:
        length = max(len(item["input_ids"]) for item in items)
        ids = _pad([item["input_ids"] for item in items], length)
        types = _pad([item["token_type_ids"] for item in items], length)
        mask = _pad([[1] * len(item["input_ids"]) for item in items], length)
    batch = {"input_ids": torch.tensor(ids), "token_type_ids": torch.tensor(types),
             "attention_mask": torch.tensor(mask)}
    if with_targets:
        for key in ("labels", "start_positions", "end_positions"):
            if key in items[0]:
                batch[key] = torch.tensor([item[key] for item in items])
    return batch


def device_of():
    """One GPU when there is one, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seeds Python's, NumPy's and PyTorch's generators (as ``transformers.set_seed``)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _optimizer_and_schedule(model, learning_rate: float, total_steps: int,
                            warmup_ratio: float, weight_decay: float):
    import torch
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.999),
                                  eps=ADAM_EPS, weight_decay=weight_decay)
    warmup = math.ceil(total_steps * warmup_ratio)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


def _batches(count: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    import torch

    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = torch.randperm(count, generator=generator).tolist()
    return [order[i:i + batch_size] for i in range(0, count, batch_size)]


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def train_epochs(model, items: Sequence[dict[str, Any]], *, batch_size: int,
                 learning_rate: float, epochs: int, seed: int, warmup_ratio: float = 0.1,
                 weight_decay: float = 0.0, device=None, checkpoint: str | None = None,
                 identity: dict | None = None, log: Callable[[str], None] = print,
                 max_steps: int | None = None,
                 progress_seconds: float = 60.0) -> dict[str, Any]:
    """Trains ``model`` on ``items`` (see the module docstring for the recipe).

    Args:
      model: a transformers model whose forward takes the items' keys and gives a loss.
      items: the training inputs (:class:`TaskInputs` ``items``).
      batch_size: examples per step.
      learning_rate: the peak learning rate.
      epochs: passes over ``items``.
      seed: seeds the shuffling (and dropout, set by the caller).
      warmup_ratio: warmup steps as a fraction of all steps (rounded up).
      weight_decay: AdamW weight decay.
      device: where to train (the model is moved there).
      checkpoint: a directory for the per-epoch checkpoint; resumes from it.
      identity: what must match for a checkpoint to be resumed.
      log: receives the progress lines.
      max_steps: stop after this many steps (benchmarks); no checkpoint then.
      progress_seconds: a progress line inside an epoch at most this often (a line
        ends every epoch).

    Returns:
      ``{"steps", "epoch_losses", "train_seconds", "resumed_from_epoch"}``.
    """
    import torch

    device = device or device_of()
    model.to(device)
    steps_per_epoch = math.ceil(len(items) / batch_size)
    total = steps_per_epoch * epochs
    optimizer, scheduler = _optimizer_and_schedule(model, learning_rate, total,
                                                   warmup_ratio, weight_decay)
    start_epoch, losses = 0, []
    state_path = os.path.join(checkpoint, "state.pt") if checkpoint else None
    if state_path and os.path.exists(state_path):
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state["identity"] != identity:
            raise ValueError(f"{state_path} is the checkpoint of another run; pass another "
                             "--output or delete it")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start_epoch, losses = state["epoch"], state["losses"]
        log(f"resuming after epoch {start_epoch}/{epochs} from {state_path}")
    model.train()
    began, step = time.monotonic(), start_epoch * steps_per_epoch
    done_here = 0
    for epoch in range(start_epoch, epochs):
        epoch_began, total_loss, seen = time.monotonic(), 0.0, 0
        last_line = epoch_began
        for i, batch_indices in enumerate(_batches(len(items), batch_size, seed, epoch)):
            batch = {k: v.to(device) for k, v in
                     collate([items[i] for i in batch_indices]).items()}
            loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
            optimizer.step()
            scheduler.step()
            total_loss += float(loss.detach()) * len(batch_indices)
            seen += len(batch_indices)
            step += 1
            done_here += 1
            if max_steps is not None and done_here >= max_steps:
                return {"steps": step, "epoch_losses": losses + [total_loss / seen],
                        "train_seconds": time.monotonic() - began,
                        "resumed_from_epoch": start_epoch}
            now = time.monotonic()
            if now - last_line >= progress_seconds and i + 1 < steps_per_epoch:
                last_line = now
                rate = (i + 1) / (now - epoch_began)
                log(f"epoch {epoch + 1}/{epochs}: step {i + 1}/{steps_per_epoch}, loss "
                    f"{total_loss / seen:.4f}, {rate:.2f} steps/s, "
                    f"ETA {_duration((total - step) / rate)}")
        losses.append(total_loss / max(seen, 1))
        elapsed = time.monotonic() - epoch_began
        rate = steps_per_epoch / elapsed if elapsed > 0 else float("inf")
        eta = (total - step) / rate if rate > 0 else 0.0
        log(f"epoch {epoch + 1}/{epochs}: {steps_per_epoch} steps, loss {losses[-1]:.4f}, "
            f"{rate:.2f} steps/s, lr {scheduler.get_last_lr()[0]:.2e}, ETA {_duration(eta)}")
        if state_path and epoch + 1 < epochs:
            _save_checkpoint(state_path, {
                "identity": identity, "epoch": epoch + 1, "losses": losses,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()})
    return {"steps": step, "epoch_losses": losses, "train_seconds": time.monotonic() - began,
            "resumed_from_epoch": start_epoch}


def _save_checkpoint(path: str, state: dict) -> None:
    import torch

    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def predict(model, items: Sequence[dict[str, Any]], batch_size: int, device=None):
    """The model's outputs on ``items``, in order: logits ``[n, labels]`` (or ``[n]`` for
    regression, ``[n, choices]``), or ``(start_logits, end_logits)`` lists for QA."""
    import torch

    device = device or device_of()
    model.to(device)
    model.eval()
    logits, starts, ends = [], [], []
    with torch.no_grad():
        for i in range(0, len(items), batch_size):
            chunk = items[i:i + batch_size]
            batch = {k: v.to(device) for k, v in collate(chunk, with_targets=False).items()}
            out = model(**batch)
            if hasattr(out, "start_logits") and out.start_logits is not None:
                for row, item in enumerate(chunk):
                    n = len(item["input_ids"])
                    starts.append(out.start_logits[row, :n].float().cpu().tolist())
                    ends.append(out.end_logits[row, :n].float().cpu().tolist())
            else:
                logits += out.logits.float().cpu().tolist()
    model.train()
    return (starts, ends) if starts else logits


# --- scoring -----------------------------------------------------------------------------
