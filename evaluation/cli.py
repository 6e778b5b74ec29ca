"""``bertjp finetune`` (one JGLUE task) and ``bertjp evaluate`` (every task present).

``bertjp evaluate`` runs the tasks one after another, each with
:func:`evaluation.finetune.finetune` in ``OUTPUT/<task>/`` (``OUTPUT/<task>/lr…-ep…/``
per grid point with ``--grid``), then prints the results in the reference README's
layout (MARC-ja acc · JSTS Pearson/Spearman · JNLI acc · JSQuAD EM/F1 ·
JCommonsenseQA acc) and a row per task with its hyperparameters, and writes both to
``OUTPUT/results.json`` and ``OUTPUT/results.md``. Finished runs are reused and an
interrupted one resumes from its last epoch, so the same command continues a grid.

``--grid`` is JGLUE's search: learning rate {5e-5, 3e-5, 2e-5} × epochs {3, 4} per task,
reporting the best point **chosen on the same dev set that is reported** (as JGLUE and
the Tohoku README do; the score is optimistic for that reason). "Best" is the mean of
the task's table metrics: accuracy; for JSTS the mean of Pearson and Spearman (the
patched ``run_glue.py``'s ``combined_score``; which one Tohoku used is not stated); for
JSQuAD the mean of EM and F1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from typing import Any, Callable

from evaluation import finetune as ft
from evaluation import metrics as jglue_metrics
from evaluation.data import resolve_tasks
from evaluation.tasks import TASK_NAMES, TASKS, TaskSpec, get_task

__all__ = ["evaluate", "evaluate_main", "finetune_main"]

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


def _task_name(value: str) -> str:
    try:
        return get_task(value).name
    except KeyError as err:
        raise argparse.ArgumentTypeError(str(err).strip("'\"")) from None


def _add_hyperparameters(parser: argparse.ArgumentParser, grid: bool) -> None:
    grid_note = "; not with --grid, which searches it" if grid else ""
    parser.add_argument("--learning-rate", type=float,
                        help=f"peak learning rate (default: JGLUE's 5e-5{grid_note})")
    parser.add_argument("--epochs", type=int,
                        help=f"training epochs (default: JGLUE's 4, 3 for JSQuAD{grid_note})")
    parser.add_argument("--batch-size", type=int, help="training batch size (default: the "
                        "task's JGLUE value: 32, JCommonsenseQA 64)")
    parser.add_argument("--seed", type=int, default=ft.DEFAULT_SEED,
                        help="random seed (default: %(default)s, as transformers)")
    parser.add_argument("--verbose", action="store_true",
                        help="show the traceback of an error")


def _finetune_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertjp finetune",
        description="Fine-tune a transformers BERT directory on one JGLUE task (PyTorch, CPU "
                    "or one GPU) and score it on the dev set; writes the model, predictions "
                    "and metrics.json to --output. Rerunning resumes from the last epoch.")
    parser.add_argument("--task", required=True, type=_task_name,
                        help=f"one of {', '.join(TASK_NAMES)}")
    parser.add_argument("--model", required=True,
                        help="transformers model directory (bertjp convert's output)")
    parser.add_argument("--data", required=True,
                        help="JGLUE's datasets/ directory (jsts-v1.3/train-v1.3.json, ...)")
    parser.add_argument("--output", required=True, help="output directory")
    _add_hyperparameters(parser, grid=False)
    parser.add_argument("--max-seq-length", type=int,
                        help="tokens per input (default: JGLUE's 512/128/128/384/64)")
    return parser


def finetune_main(argv: list[str] | None = None) -> int:
    """``bertjp finetune``."""
    args = _finetune_parser().parse_args(argv)
    config = ft.FinetuneConfig(task=args.task, model_dir=args.model, data_dir=args.data,
                               output_dir=args.output, learning_rate=args.learning_rate,
                               epochs=args.epochs, batch_size=args.batch_size,
                               max_seq_length=args.max_seq_length, seed=args.seed)
    result = ft.finetune(config, log=_log)
    print(json.dumps({"task": result["task"], "metrics": result["metrics"],
                      "hyperparameters": result["hyperparameters"],
                      "output": args.output}, ensure_ascii=False))
    return 0


def _log(line: str) -> None:
    print(line, flush=True)


def _evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertjp evaluate",
        description="Fine-tune and score a transformers BERT directory on every JGLUE task "
                    "whose files are under --data, one after another; print the results "
                    "table and write it to --output as results.json and results.md.")
    parser.add_argument("--model", required=True,
                        help="transformers model directory (bertjp convert's output)")
    parser.add_argument("--data", required=True,
                        help="JGLUE's datasets/ directory (jsts-v1.3/, jnli-v1.3/, ...)")
    parser.add_argument("--output", required=True,
                        help="output directory (a subdirectory per task)")
    parser.add_argument("--tasks", nargs="+", action="extend", type=_task_name, metavar="TASK",
                        help=f"only these tasks (of {', '.join(TASK_NAMES)}); default: every "
                             "task whose files are present")
    parser.add_argument("--grid", action="store_true",
                        help="JGLUE's grid (lr 5e-5/3e-5/2e-5 x epochs 3/4) per task; the best "
                             "point is chosen on the dev set that is reported")
    parser.add_argument("--name", help="the model's name in the table (default: the "
                                       "--model directory's name)")
    _add_hyperparameters(parser, grid=True)
    return parser


def _present_tasks(data_dir: str) -> tuple[list[str], list[str]]:
    """Task names with a directory under ``data_dir`` (plus MARC-ja, which
    ``resolve_tasks`` reports as skipped), and a note for each other task."""
    names, notes = [], []
    for name, spec in TASKS.items():
        if not spec.distributed or spec.path(data_dir, "train").parent.is_dir():
            names.append(name)
        else:
            notes.append(f"{spec.display_name}: skipped, no {spec.dirname}/ under {data_dir}")
    return names, notes


def _selection_score(spec: TaskSpec, metrics: dict[str, Any]) -> float:
    values = [metrics.get(name) for name in spec.metrics]
    if any(v is None for v in values):
        return float("-inf")
    return sum(values) / len(values)


def _run_task(spec: TaskSpec, args, log: Callable[[str], None]) -> dict[str, Any]:
    """The task's result: the one run, or the best of the grid with every point."""
    base = ft.FinetuneConfig(task=spec.name, model_dir=args.model, data_dir=args.data,
                             output_dir=os.path.join(args.output, spec.name),
                             learning_rate=args.learning_rate, epochs=args.epochs,
                             batch_size=args.batch_size, seed=args.seed)
    if not args.grid:
        result = ft.finetune(base, log=log)
        return {"metrics": result["metrics"], "hyperparameters": result["hyperparameters"],
                "output": base.output_dir, "grid": None}
    points = []
    for lr in spec.learning_rates:
        for epochs in spec.epochs:
            out = os.path.join(base.output_dir, f"lr{lr:g}-ep{epochs}")
            log(f"{spec.display_name}: grid point lr {lr:g}, {epochs} epochs")
            result = ft.finetune(dataclasses.replace(base, learning_rate=lr, epochs=epochs,
                                                     output_dir=out), log=log)
            points.append({"metrics": result["metrics"],
                           "hyperparameters": result["hyperparameters"], "output": out,
                           "selection_score": _selection_score(spec, result["metrics"])})
    best = max(points, key=lambda p: p["selection_score"])
    return {"metrics": best["metrics"], "hyperparameters": best["hyperparameters"],
            "output": best["output"], "grid": points}


def _shown(metrics: dict[str, Any]) -> dict[str, float]:
    """The metrics that have a value (a JSTS correlation of constant predictions has none)."""
    return {k: v for k, v in metrics.items() if v is not None}


def _details_table(results: dict[str, dict], skipped: dict[str, str]) -> str:
    titles = jglue_metrics.column_titles()
    lines = ["| task | result | learning rate | epochs | batch | max seq | note |",
             "|---|---|---|---|---|---|---|"]
    for name in TASKS:
        if name in results:
            res = results[name]
            hp = res["hyperparameters"]
            table = jglue_metrics.results_table({name: _shown(res["metrics"])})
            cell = table["cells"][titles[name]]
            note = "best of grid" if res["grid"] else ""
            lines.append(f"| {titles[name]} | {cell} | {hp['learning_rate']:g} | "
                         f"{hp['epochs']} | {hp['batch_size']} | {hp['max_seq_length']} | "
                         f"{note} |")
        else:
            lines.append(f"| {titles[name]} | {jglue_metrics.MISSING} | | | | | "
                         f"{skipped.get(name, 'not run')} |")
    return "\n".join(lines) + "\n"


def evaluate(args, log: Callable[[str], None] = _log) -> dict[str, Any]:
    """Runs ``bertjp evaluate`` with parsed ``args``; returns what ``results.json`` holds.

    Raises:
      ValueError: conflicting flags or no task to run.
      FileNotFoundError: the model or a task's file is missing.
    """
    if args.grid and (args.learning_rate is not None or args.epochs is not None):
        raise ValueError("--grid searches the learning rate and the epochs: drop "
                         "--learning-rate/--epochs, or drop --grid")
    ft._check_model_dir(args.model)
    if args.tasks:
        names, notes = list(dict.fromkeys(args.tasks)), []
    else:
        names, notes = _present_tasks(args.data)
    specs, skipped_notes = resolve_tasks(args.data, names)
    notes += skipped_notes
    skipped = {}
    for note in notes:
        display = note.split(":", 1)[0]
        name = next(n for n, s in TASKS.items() if s.display_name == display)
        skipped[name] = note.split(": ", 1)[1]
    for note in notes:
        log(note)
    if not specs:
        raise ValueError(f"no JGLUE task to run under {args.data} (expected e.g. "
                         f"{TASKS['jsts'].path(args.data, 'train')})")
    began = time.monotonic()
    results: dict[str, dict] = {}
    for spec in specs:
        log(f"=== {spec.display_name} ===")
        results[spec.name] = _run_task(spec, args, log)
    model_name = args.name or os.path.basename(os.path.normpath(args.model))
    shown = {n: _shown(r["metrics"]) for n, r in results.items()}
    table = jglue_metrics.format_results_markdown({model_name: shown})
    details = _details_table(results, skipped)
    summary = {
        **jglue_metrics.results_table(shown, model_name),
        "tasks": results, "skipped": skipped, "grid": bool(args.grid),
        "selection": ("best grid point per task, chosen on the reported dev set (mean of "
                      "the task's table metrics)") if args.grid else None,
        "split": "valid (dev)", "seconds": round(time.monotonic() - began, 1),
    }
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, RESULTS_JSON), "w", encoding="utf-8") as f:
        json.dump(summary, f, ensure_ascii=False, indent=2)
        f.write("\n")
    note = ("\nGrid: JGLUE's lr × epochs grid per task; each cell is the best point, "
            "chosen on the dev set it reports.\n" if args.grid else "")
    with open(os.path.join(args.output, RESULTS_MD), "w", encoding="utf-8") as f:
        f.write(f"JGLUE dev-set results\n\n{table}\n{details}{note}")
    log("")
    log(table)
    log(details + note)
    return summary


def evaluate_main(argv: list[str] | None = None) -> int:
    """``bertjp evaluate``."""
    evaluate(_evaluate_parser().parse_args(argv))
    return 0
