"""JGLUE's metrics, computed the way JGLUE's patched transformers v4.9.2 scripts do.

* MARC-ja, JNLI, JCommonsenseQA: accuracy of the predicted label ids.
* JSTS: Pearson and Spearman correlation of the raw (unclipped) regression outputs with
  the gold scores. Spearman ranks ties by their average rank, as scipy does. A constant
  input has no correlation: :class:`ConstantInputError` is raised instead of scipy's NaN.
  JGLUE's ``glue`` metric casts to float32 first; this module works in float64, which can
  differ in the 7th significant digit.
* JSQuAD: exact match and character-level F1 after JGLUE's Japanese normalisation
  (:func:`normalize_answer`), the maximum over the gold answers of each question, averaged
  over the questions. Unlike transformers' ``squad_metrics``, a question without a
  prediction is an error, not silently left out of the mean.

Every score is a fraction in [0, 1] (JSQuAD included), as JGLUE's and the reference's
tables report them.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping, Sequence

from evaluation.tasks import TASKS

__all__ = [
    "METRIC_TITLES",
    "MISSING",
    "ConstantInputError",
    "accuracy",
    "char_f1",
    "column_titles",
    "exact_match",
    "format_results_markdown",
    "jsquad_scores",
    "jsts_correlations",
    "normalize_answer",
    "pearson",
    "results_table",
    "spearman",
]

MISSING = "—"
"""What the results table shows for a task or metric without a value."""
METRIC_TITLES = {"accuracy": "acc", "pearson": "Pearson", "spearman": "Spearman",
                 "exact_match": "EM", "f1": "F1"}
"""How the results table names each metric in its column titles."""


class ConstantInputError(ValueError):
    """A correlation of an input whose values are all equal (undefined, scipy gives NaN)."""


# --- accuracy and correlations -----------------------------------------------------------

def _paired(predictions: Sequence, references: Sequence) -> int:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        raise ValueError("no predictions to score")
    return len(predictions)


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Fraction of ``predictions`` equal to ``labels`` (predicted ids, after argmax).

    Raises:
        ValueError: when the lengths differ or both are empty.
    """
    n = _paired(predictions, labels)
    return sum(int(p) == int(g) for p, g in zip(predictions, labels, strict=True)) / n


def _floats(values: Iterable[float], name: str) -> list[float]:
    result = [float(v) for v in values]
    if not all(math.isfinite(v) for v in result):
        raise ValueError(f"{name} contains NaN or infinity")
    return result


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r of two equally long sequences of at least two values.

    Raises:
        ConstantInputError: when either sequence is constant (r is undefined).
        ValueError: on differing lengths, fewer than two values, NaN or infinity.
    """
    n = _paired(x, y)
    if n < 2:
        raise ValueError("a correlation needs at least two values")
    xs, ys = _floats(x, "x"), _floats(y, "y")
    mean_x, mean_y = math.fsum(xs) / n, math.fsum(ys) / n
    dx = [v - mean_x for v in xs]
    dy = [v - mean_y for v in ys]
    sxx = math.fsum(d * d for d in dx)
    syy = math.fsum(d * d for d in dy)
    if sxx == 0.0 or syy == 0.0:
        which = "x" if sxx == 0.0 else "y"
        raise ConstantInputError(f"correlation undefined: all values of {which} are equal")
    r = math.fsum(a * b for a, b in zip(dx, dy, strict=True)) / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))


def _average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = rank
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's r of the average ranks (ties share their mean rank).

    Raises:
        ConstantInputError: when either sequence is constant.
        ValueError: on differing lengths, fewer than two values, NaN or infinity.
    """
    _paired(x, y)
    return pearson(_average_ranks(_floats(x, "x")), _average_ranks(_floats(y, "y")))


def jsts_correlations(predictions: Sequence[float],
                      labels: Sequence[float]) -> dict[str, float]:
    """JSTS's ``{"pearson": r, "spearman": rho}`` of the raw regression outputs."""
    return {"pearson": pearson(predictions, labels), "spearman": spearman(predictions, labels)}


# --- JSQuAD ------------------------------------------------------------------------------

def normalize_answer(text: str) -> str:
    """JGLUE's patched SQuAD normalisation, in its order of steps.

    1. lower-case (``str.lower``, so full-width Latin is lowered too);
    2. no punctuation removal;
    3. strip trailing ``。`` (every one at the very end; a ``。`` followed by a space stays);
    4. split on any whitespace (U+3000 included) and join with one ASCII space, which also
       drops leading and trailing whitespace.

    There is no NFKC and no article removal.
    """
    return " ".join(text.lower().rstrip("。").split())


def exact_match(prediction: str, gold: str) -> int:
    """1 when the normalised strings are equal, else 0."""
    return int(normalize_answer(prediction) == normalize_answer(gold))


def char_f1(prediction: str, gold: str) -> float:
    """Character-level F1 of the normalised strings (a space counts as a character).

    When either side normalises to the empty string, the score is 1 if both do, else 0.
    """
    pred_chars = list(normalize_answer(prediction))
    gold_chars = list(normalize_answer(gold))
    if not pred_chars or not gold_chars:
        return float(pred_chars == gold_chars)
    common = sum((collections.Counter(pred_chars) & collections.Counter(gold_chars)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_chars)
    recall = common / len(gold_chars)
    return 2 * precision * recall / (precision + recall)


def _gold_texts(golds: Sequence[str] | str) -> list[str]:
    """Golds as transformers' ``get_raw_scores`` uses them: empties dropped, else ``[""]``."""
    texts = [golds] if isinstance(golds, str) else list(golds)
    return [g for g in texts if normalize_answer(g)] or [""]


def jsquad_scores(predictions: Mapping[str, str],
                  gold_answers: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """``{"exact_match", "f1"}`` over all questions, each the max over its gold answers.

    Args:
        predictions: Predicted answer text per question id.
        gold_answers: Gold answer texts per question id (JSQuAD dev has 2 or 3).

    Raises:
        ValueError: when a question has no prediction, a prediction has no question,
            or there are no questions.
    """
    if not gold_answers:
        raise ValueError("no questions to score")
    missing = [qid for qid in gold_answers if qid not in predictions]
    extra = [qid for qid in predictions if qid not in gold_answers]
    if missing or extra:
        raise ValueError(f"predictions do not match the questions: {len(missing)} missing "
                         f"(first {missing[:3]}), {len(extra)} unknown (first {extra[:3]})")
    em = f1 = 0.0
    for qid, golds in gold_answers.items():
        texts = _gold_texts(golds)
        em += max(exact_match(predictions[qid], g) for g in texts)
        f1 += max(char_f1(predictions[qid], g) for g in texts)
    n = len(gold_answers)
    return {"exact_match": em / n, "f1": f1 / n}


# --- results table -----------------------------------------------------------------------

def _cell(metrics: Mapping[str, float] | None, names: Sequence[str], digits: int) -> str:
    if metrics is None:
        return MISSING
    parts = [MISSING if metrics.get(name) is None else f"{float(metrics[name]):.{digits}f}"
             for name in names]
    return MISSING if all(p == MISSING for p in parts) else "/".join(parts)


def column_titles() -> dict[str, str]:
    """Column title per task name, e.g. ``{"jsts": "JSTS Pearson/Spearman", ...}``."""
    return {name: f"{task.display_name} " + "/".join(METRIC_TITLES[m] for m in task.metrics)
            for name, task in TASKS.items()}


def _check_tasks(results: Mapping[str, Mapping[str, float] | None]) -> None:
    unknown = [name for name in results if name not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; expected names from {list(TASKS)}")


def results_table(results: Mapping[str, Mapping[str, float] | None], model: str = "",
                  digits: int = 3) -> dict:
    """The results of one model as a JSON-ready dict.

    Args:
        results: Metric dict per task name (``{"jsts": {"pearson": .9, "spearman": .8}}``);
            a task that is absent or ``None`` was not run.
        model: The model's name.
        digits: Decimals of the display cells.

    Returns:
        ``{"model": ..., "metrics": {task: {metric: value} | None}, "cells": {column title:
        "0.914/0.875" | "—"}}`` (titles from :func:`column_titles`) with the five tasks in
        table order; ``metrics`` keeps every metric given (e.g. JSTS's combined score),
        ``cells`` only the table's.

    Raises:
        ValueError: for a task name that is not a JGLUE task.
    """
    _check_tasks(results)
    metrics = {name: (None if results.get(name) is None
                      else {k: float(v) for k, v in results[name].items()})
               for name in TASKS}
    titles = column_titles()
    cells = {titles[name]: _cell(metrics[name], task.metrics, digits)
             for name, task in TASKS.items()}
    return {"model": model, "metrics": metrics, "cells": cells}


def format_results_markdown(results_by_model: Mapping[str, Mapping[str, Mapping[str, float]
                                                                   | None]],
                            digits: int = 3) -> str:
    """A Markdown table in the reference README's layout, one row per model.

    Columns: model | MARC-ja acc | JSTS Pearson/Spearman | JNLI acc | JSQuAD EM/F1 |
    JCommonsenseQA acc, cells such as ``0.919/0.881``; a task not run shows ``—``.

    Args:
        results_by_model: Per model name, the metric dicts per task (see
            :func:`results_table`).
        digits: Decimals shown.

    Raises:
        ValueError: for a task name that is not a JGLUE task.
    """
    header = ["model", *column_titles().values()]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for model, results in results_by_model.items():
        cells = results_table(results, model, digits)["cells"]
        lines.append("| " + " | ".join([model, *cells.values()]) + " |")
    return "\n".join(lines) + "\n"
