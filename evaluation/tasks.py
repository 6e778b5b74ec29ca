"""The five JGLUE tasks with JGLUE's own fine-tuning defaults.

Every default is JGLUE's (yahoojapan/JGLUE v1.3 ``fine-tuning/README.md`` and the
transformers v4.9.2 scripts it patches), not ours:

* learning rate searched over {5e-5, 3e-5, 2e-5} and epochs over {3, 4}, warmup ratio 0.1,
  weight decay 0 (the ``TrainingArguments`` default that JGLUE does not override);
* max sequence length 512 (MARC-ja), 128 (JSTS, JNLI), 384 (JSQuAD), 64 (JCommonsenseQA);
* batch size 32, 64 for JCommonsenseQA (the README's commands; 32 for JSTS/JNLI is the
  MARC-ja command's value, which JGLUE says to reuse);
* JSQuAD: the legacy ``run_squad.py`` defaults, doc stride 128, max query 64 tokens, max
  answer 30 tokens, n-best 20.

Labels follow the patched ``run_glue.py``: classification labels are
``sorted(set(labels))``, so JNLI is contradiction=0, entailment=1, neutral=2 and MARC-ja
negative=0, positive=1.

Files follow JGLUE v1.3's layout under a data directory, e.g.
``<data_dir>/jsts-v1.3/valid-v1.3.json``. MARC-ja is no longer distributed; a user who
builds it with JGLUE's ``marc-ja.py`` is expected to place it at
``<data_dir>/marc_ja-v1.3/{train,valid}-v1.3.json`` (run the script with
``--output-dir datasets/marc_ja-v1.3 --version 1.3``; its default ``--version`` is 1.0).
"""

from __future__ import annotations

import dataclasses
import enum
import pathlib
import types

__all__ = [
    "EPOCHS",
    "JGLUE_VERSION",
    "LEARNING_RATES",
    "SPLITS",
    "TASKS",
    "TASK_NAMES",
    "QASettings",
    "TaskKind",
    "TaskSpec",
    "get_task",
]

JGLUE_VERSION = "1.3"
"""The JGLUE release whose file layout and labels this module describes."""
LEARNING_RATES: tuple[float, ...] = (5e-5, 3e-5, 2e-5)
"""JGLUE's learning-rate grid."""
EPOCHS: tuple[int, ...] = (3, 4)
"""JGLUE's epoch grid."""
SPLITS: tuple[str, ...] = ("train", "valid", "test")
"""JGLUE's split names; ``valid`` is the dev set that JGLUE and the references report."""


class TaskKind(str, enum.Enum):
    """What kind of head and metric a task needs."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    MULTIPLE_CHOICE = "multiple_choice"
    QUESTION_ANSWERING = "question_answering"


@dataclasses.dataclass(frozen=True)
class QASettings:
    """Span-extraction settings of the legacy ``run_squad.py`` that JGLUE uses for JSQuAD.

    Attributes:
        doc_stride: Tokens between the starts of two context windows.
        max_query_length: Question tokens kept (longer questions are truncated).
        max_answer_length: Longest predicted answer, in tokens.
        n_best_size: Start and end candidates considered per window.
    """

    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best_size: int = 20


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One JGLUE task and JGLUE's fine-tuning defaults for it.

    Attributes:
        name: Registry key, lower case (``jsts``).
        display_name: The name used in results tables (``JSTS``).
        kind: Head and metric family.
        dirname: The task's folder under the data directory (``jsts-v1.3``).
        max_seq_length: Max tokens of one input sequence.
        batch_size: Training batch size.
        metrics: Names of the metrics reported, in table order.
        labels: Label names in id order (classification); choice ids for multiple choice.
        label_range: Inclusive (low, high) of a regression label.
        num_choices: Choices per question (multiple choice), else 0.
        learning_rates: Learning-rate grid.
        epochs: Epoch grid.
        warmup_ratio: Fraction of the training steps used for linear warmup.
        weight_decay: AdamW weight decay.
        qa: Span-extraction settings (question answering only).
        distributed: False where JGLUE no longer ships the data (MARC-ja): a missing file
            then means "skip the task", not an error.
    """

    name: str
    display_name: str
    kind: TaskKind
    dirname: str
    max_seq_length: int
    metrics: tuple[str, ...]
    batch_size: int = 32
    labels: tuple[str, ...] = ()
    label_range: tuple[float, float] | None = None
    num_choices: int = 0
    learning_rates: tuple[float, ...] = LEARNING_RATES
    epochs: tuple[int, ...] = EPOCHS
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    qa: QASettings | None = None
    distributed: bool = True

    @property
    def num_labels(self) -> int:
        """Output units of the head: labels, choices, 1 for regression, 2 for spans."""
        if self.kind is TaskKind.REGRESSION:
            return 1
        if self.kind is TaskKind.QUESTION_ANSWERING:
            return 2
        return len(self.labels)

    def label_id(self, label: str) -> int:
        """The id of a classification label name (``KeyError`` names the valid set)."""
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"{self.name}: unknown label {label!r}; "
                           f"expected one of {list(self.labels)}") from None

    def file_name(self, split: str) -> str:
        """The file name of a split, e.g. ``valid-v1.3.json``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
        return f"{split}-v{JGLUE_VERSION}.json"

    def path(self, data_dir: str | pathlib.Path, split: str) -> pathlib.Path:
        """Where a split lives under ``data_dir`` (JGLUE's ``datasets/`` folder)."""
        return pathlib.Path(data_dir) / self.dirname / self.file_name(split)


_TASK_LIST = (
    TaskSpec(
        name="marc-ja", display_name="MARC-ja", kind=TaskKind.CLASSIFICATION,
        dirname=f"marc_ja-v{JGLUE_VERSION}", max_seq_length=512, metrics=("accuracy",),
        labels=("negative", "positive"), distributed=False,
    ),
    TaskSpec(
        name="jsts", display_name="JSTS", kind=TaskKind.REGRESSION,
        dirname=f"jsts-v{JGLUE_VERSION}", max_seq_length=128, metrics=("pearson", "spearman"),
        label_range=(0.0, 5.0),
    ),
    TaskSpec(
        name="jnli", display_name="JNLI", kind=TaskKind.CLASSIFICATION,
        dirname=f"jnli-v{JGLUE_VERSION}", max_seq_length=128, metrics=("accuracy",),
        labels=("contradiction", "entailment", "neutral"),
    ),
    TaskSpec(
        name="jsquad", display_name="JSQuAD", kind=TaskKind.QUESTION_ANSWERING,
        dirname=f"jsquad-v{JGLUE_VERSION}", max_seq_length=384, metrics=("exact_match", "f1"),
        qa=QASettings(),
    ),
    TaskSpec(
        name="jcommonsenseqa", display_name="JCommonsenseQA", kind=TaskKind.MULTIPLE_CHOICE,
        dirname=f"jcommonsenseqa-v{JGLUE_VERSION}", max_seq_length=64, batch_size=64,
        metrics=("accuracy",), labels=("0", "1", "2", "3", "4"), num_choices=5,
    ),
)

TASKS: types.MappingProxyType[str, TaskSpec] = types.MappingProxyType(
    {task.name: task for task in _TASK_LIST})
"""The registry, in the column order of the reference results table."""
TASK_NAMES: tuple[str, ...] = tuple(TASKS)
"""Registry keys in table order."""


def get_task(name: str) -> TaskSpec:
    """The task called ``name`` (case-insensitive; ``_`` and ``-`` are interchangeable).

    Raises:
        KeyError: for an unknown name; the message lists the known ones.
    """
    key = name.strip().lower().replace("_", "-")
    if key not in TASKS:
        raise KeyError(f"unknown JGLUE task {name!r}; expected one of {list(TASK_NAMES)}")
    return TASKS[key]
