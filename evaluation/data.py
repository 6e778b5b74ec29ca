"""Readers for JGLUE v1.3 files as JGLUE distributes them.

* JSTS, JNLI: JSON Lines with ``sentence1``, ``sentence2`` and ``label`` (a float in
  [0, 5] for JSTS, one of ``contradiction``/``entailment``/``neutral`` for JNLI).
* JCommonsenseQA: JSON Lines with ``question``, ``choice0`` … ``choice4`` and an int
  ``label`` in 0–4.
* MARC-ja: JSON Lines with ``sentence`` and ``label`` (``positive``/``negative``), as
  JGLUE's ``marc-ja.py`` writes them. JGLUE no longer ships it: :func:`resolve_tasks`
  skips the task with a message when its files are missing.
* JSQuAD: one SQuAD v1.1-style JSON object ``{"data": [...]}``. Each context is
  ``"<title> [SEP] <paragraph>"`` and ``answer_start`` indexes that whole string, so
  the title is kept as is; every ``answer_start`` is checked against its text.

Every problem raises :class:`JGLUEDataError` (a ``ValueError``) whose message starts with
``<file>:<line>:`` (JSON Lines) or ``<file>: question <id>:`` (JSQuAD). A missing file
raises :class:`DataFileNotFoundError`, a file with no examples raises
:class:`JGLUEDataError` too.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Union

from evaluation.tasks import TASK_NAMES, TaskSpec, get_task

__all__ = [
    "DataFileNotFoundError",
    "Example",
    "JGLUEDataError",
    "MultipleChoiceExample",
    "QAAnswer",
    "QAExample",
    "SentenceExample",
    "SentencePairExample",
    "load_split",
    "read_examples",
    "read_jcommonsenseqa",
    "read_jnli",
    "read_jsquad",
    "read_jsts",
    "read_marc_ja",
    "resolve_tasks",
]

JSQUAD_SEPARATOR = " [SEP] "
"""What joins a JSQuAD article title to its paragraph in ``context``."""


class JGLUEDataError(ValueError):
    """A JGLUE file that cannot be used; the message names the file and line or question."""


class DataFileNotFoundError(JGLUEDataError, FileNotFoundError):
    """A JGLUE file that is not where the task expects it."""


@dataclasses.dataclass(frozen=True)
class SentenceExample:
    """A single-sentence classification example (MARC-ja).

    Attributes:
        guid: ``review_id`` when present, else ``<file stem>-<line>``.
        sentence: The review text.
        label: Label id (negative=0, positive=1).
    """

    guid: str
    sentence: str
    label: int


@dataclasses.dataclass(frozen=True)
class SentencePairExample:
    """A sentence-pair example (JSTS, JNLI).

    Attributes:
        guid: ``sentence_pair_id``.
        sentence1: First sentence (JNLI: premise).
        sentence2: Second sentence (JNLI: hypothesis).
        label: Similarity in [0, 5] (JSTS, a float) or a label id (JNLI, an int).
    """

    guid: str
    sentence1: str
    sentence2: str
    label: float | int


@dataclasses.dataclass(frozen=True)
class MultipleChoiceExample:
    """A five-choice question (JCommonsenseQA).

    Attributes:
        guid: ``q_id`` as a string.
        question: The question.
        choices: ``choice0`` … ``choice4`` in order.
        label: Index of the correct choice.
    """

    guid: str
    question: str
    choices: tuple[str, ...]
    label: int


@dataclasses.dataclass(frozen=True)
class QAAnswer:
    """One gold answer span of JSQuAD.

    Attributes:
        text: The answer text.
        answer_start: Character offset into the full context (title included).
    """

    text: str
    answer_start: int


@dataclasses.dataclass(frozen=True)
class QAExample:
    """One JSQuAD question.

    Attributes:
        qid: The question ``id``.
        title: The article title.
        question: The question.
        context: ``"<title> [SEP] <paragraph>"``, exactly as in the file.
        answers: Gold answers; training uses the first, evaluation all of them.
    """

    qid: str
    title: str
    question: str
    context: str
    answers: tuple[QAAnswer, ...]


Example = Union[SentenceExample, SentencePairExample, MultipleChoiceExample, QAExample]
"""Any example type a reader returns."""


# --- JSON Lines --------------------------------------------------------------------------

def _check_exists(path: pathlib.Path) -> None:
    if not path.is_file():
        raise DataFileNotFoundError(f"{path}: no such file")


def _json_lines(path: pathlib.Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line."""
    _check_exists(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise JGLUEDataError(f"{path}:{lineno}: not valid JSON ({e.msg}, column "
                                     f"{e.colno})") from None
            if not isinstance(obj, dict):
                raise JGLUEDataError(f"{path}:{lineno}: expected a JSON object, "
                                     f"got {type(obj).__name__}")
            yield lineno, obj


def _field(obj: dict[str, Any], name: str, types: type | tuple[type, ...],
           where: str) -> Any:
    """``obj[name]``, checked to exist and to be of ``types`` (bool is never a number)."""
    if name not in obj:
        raise JGLUEDataError(f"{where}: missing field {name!r} (fields: {sorted(obj)})")
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, types):
        wanted = types.__name__ if isinstance(types, type) else " or ".join(
            t.__name__ for t in types)
        raise JGLUEDataError(f"{where}: field {name!r} must be {wanted}, "
                             f"got {type(value).__name__} {value!r}")
    return value


def _label_name(task: TaskSpec, obj: dict[str, Any], where: str) -> int:
    label = _field(obj, "label", str, where)
    if label not in task.labels:
        raise JGLUEDataError(f"{where}: label {label!r} is not a {task.display_name} label "
                             f"(expected one of {list(task.labels)})")
    return task.labels.index(label)


def _non_empty(examples: list[Any], path: pathlib.Path) -> list[Any]:
    if not examples:
        raise JGLUEDataError(f"{path}: no examples (empty file)")
    return examples


def read_jsts(path: str | pathlib.Path) -> list[SentencePairExample]:
    """JSTS examples of a JSON Lines file; labels are floats in [0, 5].

    Raises:
        JGLUEDataError: naming the file and line of the first bad line (string labels,
            as in JSTS v1.0, are rejected: JGLUE made them floats in v1.1).
        DataFileNotFoundError: when the file does not exist.
    """
    path = pathlib.Path(path)
    low, high = get_task("jsts").label_range or (0.0, 5.0)
    examples = []
    for lineno, obj in _json_lines(path):
        where = f"{path}:{lineno}"
        label = float(_field(obj, "label", (int, float), where))
        if not (math.isfinite(label) and low <= label <= high):
            raise JGLUEDataError(f"{where}: label {label!r} is outside JSTS's range "
                                 f"[{low}, {high}]")
        examples.append(SentencePairExample(
            guid=str(_field(obj, "sentence_pair_id", (str, int), where)),
            sentence1=_field(obj, "sentence1", str, where),
            sentence2=_field(obj, "sentence2", str, where),
            label=label))
    return _non_empty(examples, path)


def read_jnli(path: str | pathlib.Path) -> list[SentencePairExample]:
    """JNLI examples of a JSON Lines file; labels become ids (contradiction=0 …).

    Raises:
        JGLUEDataError: naming the file and line of the first bad line.
        DataFileNotFoundError: when the file does not exist.
    """
    path = pathlib.Path(path)
    task = get_task("jnli")
    examples = []
    for lineno, obj in _json_lines(path):
        where = f"{path}:{lineno}"
        examples.append(SentencePairExample(
            guid=str(_field(obj, "sentence_pair_id", (str, int), where)),
            sentence1=_field(obj, "sentence1", str, where),
            sentence2=_field(obj, "sentence2", str, where),
            label=_label_name(task, obj, where)))
    return _non_empty(examples, path)


def read_marc_ja(path: str | pathlib.Path) -> list[SentenceExample]:
    """MARC-ja examples of a user-built JSON Lines file (``sentence``, ``label``).

    Raises:
        JGLUEDataError: naming the file and line of the first bad line.
        DataFileNotFoundError: when the file does not exist.
    """
    path = pathlib.Path(path)
    task = get_task("marc-ja")
    examples = []
    for lineno, obj in _json_lines(path):
        where = f"{path}:{lineno}"
        guid = obj.get("review_id")
        examples.append(SentenceExample(
            guid=str(guid) if guid is not None else f"{path.stem}-{lineno}",
            sentence=_field(obj, "sentence", str, where),
            label=_label_name(task, obj, where)))
    return _non_empty(examples, path)


def read_jcommonsenseqa(path: str | pathlib.Path) -> list[MultipleChoiceExample]:
    """JCommonsenseQA examples of a JSON Lines file; ``label`` is an int in 0–4.

    Raises:
        JGLUEDataError: naming the file and line of the first bad line.
        DataFileNotFoundError: when the file does not exist.
    """
    path = pathlib.Path(path)
    task = get_task("jcommonsenseqa")
    examples = []
    for lineno, obj in _json_lines(path):
        where = f"{path}:{lineno}"
        label = _field(obj, "label", int, where)
        if not 0 <= label < task.num_choices:
            raise JGLUEDataError(f"{where}: label {label} is not a choice index "
                                 f"(expected 0–{task.num_choices - 1})")
        examples.append(MultipleChoiceExample(
            guid=str(_field(obj, "q_id", (int, str), where)),
            question=_field(obj, "question", str, where),
            choices=tuple(_field(obj, f"choice{i}", str, where)
                          for i in range(task.num_choices)),
            label=label))
    return _non_empty(examples, path)


# --- JSQuAD ------------------------------------------------------------------------------

def _items(obj: Any, name: str, where: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise JGLUEDataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return _field(obj, name, list, where)


def _jsquad_answers(qa: dict[str, Any], context: str, where: str) -> tuple[QAAnswer, ...]:
    if qa.get("is_impossible", False) is not False:
        raise JGLUEDataError(f"{where}: is_impossible must be false (JSQuAD has no "
                             f"unanswerable questions)")
    answers = _field(qa, "answers", list, where)
    if not answers:
        raise JGLUEDataError(f"{where}: no answers")
    result = []
    for i, answer in enumerate(answers):
        at = f"{where}: answer {i}"
        if not isinstance(answer, dict):
            raise JGLUEDataError(f"{at}: expected a JSON object, got {type(answer).__name__}")
        text = _field(answer, "text", str, at)
        start = _field(answer, "answer_start", int, at)
        if not text or context[start:start + len(text)] != text or start < 0:
            raise JGLUEDataError(
                f"{at}: answer_start {start} does not point at its text {text!r} "
                f"(context has {context[max(start, 0):max(start, 0) + len(text)]!r} there)")
        result.append(QAAnswer(text=text, answer_start=start))
    return tuple(result)


def read_jsquad(path: str | pathlib.Path) -> list[QAExample]:
    """JSQuAD questions of a SQuAD v1.1-style JSON file, one example per question.

    The context is kept exactly as in the file, title and ``[SEP]`` included, because
    ``answer_start`` indexes it and about 10 % of gold answers are in the title.

    Raises:
        JGLUEDataError: naming the file and the question id (or the article and paragraph
            index when the id itself is missing) of the first problem, including any
            ``answer_start`` that does not point at its text and duplicate question ids.
        DataFileNotFoundError: when the file does not exist.
    """
    path = pathlib.Path(path)
    _check_exists(path)
    try:
        with open(path, encoding="utf-8") as f:
            root = json.load(f)
    except json.JSONDecodeError as e:
        raise JGLUEDataError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column "
                             f"{e.colno})") from None
    examples: list[QAExample] = []
    seen: set[str] = set()
    for a, article in enumerate(_items(root, "data", str(path))):
        at_article = f"{path}: article {a}"
        paragraphs = _items(article, "paragraphs", at_article)
        title = _field(article, "title", str, at_article)
        for p, paragraph in enumerate(paragraphs):
            at_paragraph = f"{at_article} paragraph {p}"
            qas = _items(paragraph, "qas", at_paragraph)
            context = _field(paragraph, "context", str, at_paragraph)
            for q, qa in enumerate(qas):
                at_question = f"{at_paragraph} question {q}"
                if not isinstance(qa, dict):
                    raise JGLUEDataError(f"{at_question}: expected a JSON object, "
                                         f"got {type(qa).__name__}")
                qid = _field(qa, "id", str, at_question)
                where = f"{path}: question {qid}"
                if qid in seen:
                    raise JGLUEDataError(f"{where}: duplicate question id")
                seen.add(qid)
                examples.append(QAExample(
                    qid=qid, title=title, question=_field(qa, "question", str, where),
                    context=context, answers=_jsquad_answers(qa, context, where)))
    return _non_empty(examples, path)


# --- by task -----------------------------------------------------------------------------

_READERS = {
    "marc-ja": read_marc_ja,
    "jsts": read_jsts,
    "jnli": read_jnli,
    "jsquad": read_jsquad,
    "jcommonsenseqa": read_jcommonsenseqa,
}


def read_examples(task: TaskSpec | str, path: str | pathlib.Path) -> list[Example]:
    """The examples of one file of ``task``, read with that task's reader."""
    spec = get_task(task) if isinstance(task, str) else task
    return _READERS[spec.name](path)


def load_split(task: TaskSpec | str, data_dir: str | pathlib.Path,
               split: str = "valid") -> list[Example]:
    """The examples of ``split`` of ``task`` under JGLUE's layout in ``data_dir``."""
    spec = get_task(task) if isinstance(task, str) else task
    return read_examples(spec, spec.path(data_dir, split))


def resolve_tasks(data_dir: str | pathlib.Path, names: Iterable[str] | None = None,
                  splits: Sequence[str] = ("train", "valid"),
                  ) -> tuple[list[TaskSpec], list[str]]:
    """The tasks to run and a message for each task skipped.

    A task that JGLUE no longer distributes (MARC-ja) is skipped, with a message, when any
    of its ``splits`` is missing; any other missing file is an error. Files are only
    checked to exist here, not read.

    Args:
        data_dir: JGLUE's ``datasets/`` folder (holding ``jsts-v1.3/`` etc.).
        names: Task names (default: all five, in table order).
        splits: The splits every task needs.

    Raises:
        DataFileNotFoundError: naming the first missing file of a distributed task.
        KeyError: for an unknown task name.
    """
    specs = [get_task(name) for name in (TASK_NAMES if names is None else names)]
    tasks, skipped = [], []
    for spec in specs:
        missing = [spec.path(data_dir, split) for split in splits
                   if not spec.path(data_dir, split).is_file()]
        if not missing:
            tasks.append(spec)
        elif not spec.distributed:
            skipped.append(
                f"{spec.display_name}: skipped, {missing[0]} not found ({spec.display_name} "
                f"is no longer distributed with JGLUE; build it with JGLUE's marc-ja.py and "
                f"place it at {spec.path(data_dir, 'train').parent}/)")
        else:
            raise DataFileNotFoundError(f"{missing[0]}: no such file ({spec.display_name} "
                                        f"{missing[0].name})")
    return tasks, skipped

