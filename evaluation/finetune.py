"""Fine-tune a converted BERT on one JGLUE task and score it on the dev set.

:func:`finetune` loads a transformers model directory (``bertjp convert``'s output or
any BERT with a ``BertJapaneseTokenizer`` ``vocab.txt``/``tokenizer_config.json``),
puts the task's head on it (``AutoModelForSequenceClassification`` with ``num_labels``
1 for JSTS's regression, ``AutoModelForMultipleChoice`` for JCommonsenseQA,
``AutoModelForQuestionAnswering`` for JSQuAD), trains it on the task's ``train`` file and
scores it on ``valid`` (the dev set JGLUE reports), writing the fine-tuned model, the
predictions and the metrics to the output directory.

**A plain PyTorch loop, not ``transformers.Trainer``:** ``Trainer`` needs ``accelerate``,
which the project does not install (transformers 5 raises ``ImportError`` without it),
and JGLUE's optimisation is small enough to write out: AdamW (betas 0.9/0.999, eps
1e-8, weight decay 0), a linear decay to 0 after a linear warmup over
``ceil(0.1 × steps)`` steps, gradient-norm clipping at 1.0, seed 42 — the
``TrainingArguments`` defaults JGLUE's commands leave alone — in fp32 on CPU or on one
GPU (chosen automatically). Batches are padded to their longest input (the attention
mask makes that equivalent to padding to the max length) and shuffled with a generator
seeded by ``seed`` and the epoch, so a resumed run sees the same batches.

**Resuming:** after each epoch the model, optimizer, scheduler and RNG states go to
``OUTPUT/checkpoint/state.pt`` (written to a temporary name, then renamed). Running the
same command again continues after the last finished epoch; a finished run
(``metrics.json`` present) is not trained again; an output directory that holds a run
with other settings is refused. The checkpoint is removed once the model is saved.

Outputs: ``model/`` (``save_pretrained`` + the tokenizer files), ``predictions.jsonl``
(one line per dev example: id, prediction, gold) and ``metrics.json`` (task, metrics,
hyperparameters, example counts, timings, device).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from typing import Any, Callable, Sequence

from evaluation import data as jglue_data
from evaluation import features as feats
from evaluation import metrics as jglue_metrics
from evaluation.loop import device_of, predict, seed_everything, train_epochs
from evaluation.tasks import TaskKind, TaskSpec, get_task

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_LEARNING_RATE", "DEFAULT_SEED", "FinetuneConfig",
           "TaskInputs", "build_inputs", "build_model", "finetune", "train_epochs"]

DEFAULT_LEARNING_RATE = 5e-5
"""The learning rate of JGLUE's README commands (the first of its grid)."""
DEFAULT_EPOCHS = {"jsquad": 3}
"""Epochs of JGLUE's README commands: 3 for JSQuAD (``run_squad.py``), 4 otherwise."""
DEFAULT_SEED = 42
"""``TrainingArguments.seed``'s default, which JGLUE does not override."""
EVAL_BATCH_SIZE = 64
CHECKPOINT = "checkpoint"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"
MODEL_DIR = "model"


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run; ``None`` means the task's JGLUE default.

    Attributes:
      task: a JGLUE task name (``jsts``, ``jnli``, ``jsquad``, ``jcommonsenseqa``,
        ``marc-ja``).
      model_dir: the transformers model directory (with ``vocab.txt``).
      data_dir: JGLUE's ``datasets/`` folder (``jsts-v1.3/train-v1.3.json``...).
      output_dir: where the model, predictions, metrics and checkpoint go.
      learning_rate: peak learning rate (5e-5).
      epochs: training epochs (4; 3 for JSQuAD).
      batch_size: training batch size (32; 64 for JCommonsenseQA).
      max_seq_length: tokens per input (512/128/128/384/64).
      seed: the random seed (42).
      eval_batch_size: batch size for the dev set.
    """

    task: str
    model_dir: str
    data_dir: str
    output_dir: str
    learning_rate: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    max_seq_length: int | None = None
    seed: int = DEFAULT_SEED
    eval_batch_size: int = EVAL_BATCH_SIZE

    def resolved(self) -> FinetuneConfig:
        """This config with every default filled in from the task (and checked).

        Raises:
          KeyError: an unknown task.
          ValueError: a value out of range.
        """
        spec = get_task(self.task)
        config = dataclasses.replace(
            self, task=spec.name,
            learning_rate=(DEFAULT_LEARNING_RATE if self.learning_rate is None
                           else self.learning_rate),
            epochs=DEFAULT_EPOCHS.get(spec.name, 4) if self.epochs is None else self.epochs,
            batch_size=spec.batch_size if self.batch_size is None else self.batch_size,
            max_seq_length=(spec.max_seq_length if self.max_seq_length is None
                            else self.max_seq_length))
        if not config.learning_rate > 0:
            raise ValueError(f"--learning-rate must be > 0, got {config.learning_rate}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(config, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, "
                                 f"got {getattr(config, name)}")
        if config.max_seq_length < 8:
            raise ValueError(f"--max-seq-length must be >= 8, got {config.max_seq_length}")
        return config

    def hyperparameters(self) -> dict[str, Any]:
        """What decides the result, as recorded in ``metrics.json``."""
        return {"learning_rate": self.learning_rate, "epochs": self.epochs,
                "batch_size": self.batch_size, "max_seq_length": self.max_seq_length,
                "seed": self.seed, "warmup_ratio": get_task(self.task).warmup_ratio,
                "weight_decay": get_task(self.task).weight_decay}

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same run (resuming needs it to match)."""
        return {"task": self.task, "model_dir": os.path.abspath(self.model_dir),
                "data_dir": os.path.abspath(self.data_dir), **self.hyperparameters()}


# --- inputs ------------------------------------------------------------------------------

@dataclasses.dataclass
class TaskInputs:
    """A split turned into model inputs.

    Attributes:
      items: per model input (a JSQuAD window, else an example), the lists to tensorize:
        ``input_ids``, ``token_type_ids`` (``[choices][tokens]`` for multiple choice) and
        the training target (``labels`` or ``start_positions``/``end_positions``).
      examples: the examples read from the file.
      qa_features: JSQuAD's windows (``items`` in the same order), else empty.
    """

    items: list[dict[str, Any]]
    examples: list[Any]
    qa_features: list[feats.QAFeature] = dataclasses.field(default_factory=list)


def _qa_dict(example: jglue_data.QAExample) -> dict[str, Any]:
    return {"id": example.qid, "question": example.question, "context": example.context,
            "answers": [{"text": a.text, "answer_start": a.answer_start}
                        for a in example.answers]}


def build_inputs(spec: TaskSpec, examples: Sequence[Any], tokenizer, max_seq_length: int,
                 training: bool) -> TaskInputs:
    """The model inputs of ``examples`` (see :class:`TaskInputs`)."""
    if spec.kind is TaskKind.QUESTION_ANSWERING:
        qa = spec.qa
        windows = feats.qa_features(tokenizer, [_qa_dict(e) for e in examples],
                                    max_seq_length, qa.doc_stride, qa.max_query_length,
                                    training)
        items = [{"input_ids": w.input_ids, "token_type_ids": w.token_type_ids,
                  "start_positions": w.start_position or 0,
                  "end_positions": w.end_position or 0} for w in windows]
        return TaskInputs(items, list(examples), windows)
    items = []
    for example in examples:
        if spec.kind is TaskKind.MULTIPLE_CHOICE:
            encoded = feats.encode_choices(tokenizer, example.question, example.choices,
                                           max_seq_length)
            item = {"input_ids": [e.input_ids for e in encoded],
                    "token_type_ids": [e.token_type_ids for e in encoded]}
        else:
            if isinstance(example, jglue_data.SentenceExample):
                first, second = example.sentence, None
            else:
                first, second = example.sentence1, example.sentence2
            encoded = feats.encode_pair(tokenizer, first, second, max_seq_length)
            item = {"input_ids": encoded.input_ids, "token_type_ids": encoded.token_type_ids}
        item["labels"] = (float(example.label) if spec.kind is TaskKind.REGRESSION
                          else int(example.label))
        items.append(item)
    return TaskInputs(items, list(examples))


def build_model(spec: TaskSpec, model_dir: str):
    """The task's transformers model on the pretrained weights (the head is new)."""
    import transformers

    transformers.logging.set_verbosity_error()  # "newly initialized" head: expected
    transformers.logging.disable_progress_bar()
    kind = spec.kind
    if kind is TaskKind.QUESTION_ANSWERING:
        return transformers.AutoModelForQuestionAnswering.from_pretrained(model_dir)
    if kind is TaskKind.MULTIPLE_CHOICE:
        return transformers.AutoModelForMultipleChoice.from_pretrained(model_dir)
    if kind is TaskKind.REGRESSION:
        return transformers.AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=1, problem_type="regression")
    return transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(spec.labels), problem_type="single_label_classification",
        id2label=dict(enumerate(spec.labels)),
        label2id={label: i for i, label in enumerate(spec.labels)})


def score(spec: TaskSpec, inputs: TaskInputs, outputs) -> tuple[dict[str, float], list[dict]]:
    """The task's metrics and per-example predictions from :func:`predict`'s outputs."""
    examples = inputs.examples
    if spec.kind is TaskKind.QUESTION_ANSWERING:
        starts, ends = outputs
        qa = spec.qa
        answers = feats.postprocess_qa(inputs.qa_features, starts, ends,
                                       [e.context for e in examples], qa.n_best_size,
                                       qa.max_answer_length)
        golds = [[a.text for a in e.answers] for e in examples]
        metrics = _squad_scores(golds, [a["text"] for a in answers])
        raw = _squad_scores(golds, [a["span_text"] for a in answers])
        metrics.update({"span_exact_match": raw["exact_match"], "span_f1": raw["f1"]})
        rows = [{"id": e.qid, "prediction": a["text"], "span_prediction": a["span_text"],
                 "answers": g} for e, a, g in zip(examples, answers, golds, strict=True)]
        return metrics, rows
    labels = [e.label for e in examples]
    if spec.kind is TaskKind.REGRESSION:
        preds = [float(row[0]) if isinstance(row, list) else float(row) for row in outputs]
        metrics = _correlations(preds, labels)
    else:
        preds = [max(range(len(row)), key=row.__getitem__) for row in outputs]
        metrics = {"accuracy": _accuracy(preds, labels)}
    rows = []
    for example, pred, label in zip(examples, preds, labels, strict=True):
        if spec.kind is TaskKind.CLASSIFICATION:
            pred, label = spec.labels[pred], spec.labels[label]
        rows.append({"id": example.guid, "prediction": pred, "label": label})
    return metrics, rows


def _accuracy(preds: Sequence[int], labels: Sequence[int]) -> float:
    return float(jglue_metrics.accuracy(preds, labels))


def _correlations(preds: Sequence[float], labels: Sequence[float]) -> dict[str, float | None]:
    try:
        return dict(jglue_metrics.jsts_correlations(preds, labels))
    except jglue_metrics.ConstantInputError:  # e.g. a model that predicts one value
        return {"pearson": None, "spearman": None}


def _squad_scores(golds: Sequence[Sequence[str]], preds: Sequence[str]) -> dict[str, float]:
    keys = [str(i) for i in range(len(golds))]
    return dict(jglue_metrics.jsquad_scores(dict(zip(keys, preds, strict=True)),
                                            dict(zip(keys, golds, strict=True))))


# --- the run -----------------------------------------------------------------------------

def _check_model_dir(model_dir: str) -> None:
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"--model {model_dir}: no such directory")
    for name in ("config.json", "vocab.txt"):
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise FileNotFoundError(f"--model {model_dir}: no {name} (a transformers BERT "
                                    "directory with its BertJapaneseTokenizer files, as "
                                    "`bertjp convert` writes)")


def _finished(output_dir: str, identity: dict) -> dict | None:
    """``metrics.json`` of a finished run with this identity; an error for another run."""
    path = os.path.join(output_dir, METRICS_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    if result.get("identity") != identity:
        raise ValueError(f"{output_dir} holds a finished run with other settings "
                         f"({path}); pass another --output or delete it")
    return result


def _save_model(model, model_dir: str, out: str) -> None:
    model.save_pretrained(out)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(model_dir, name)):
            shutil.copyfile(os.path.join(model_dir, name), os.path.join(out, name))


_INPUTS: dict[tuple, TaskInputs] = {}


def _file_key(path: str) -> tuple:
    stat = os.stat(path)
    return os.path.abspath(path), stat.st_mtime_ns, stat.st_size


def _split_inputs(spec: TaskSpec, config: FinetuneConfig, split: str) -> TaskInputs:
    """A split's inputs, reused while the files and settings are the same: the runs of a
    grid (same task, one after another) read and tokenize each split once. Only the
    latest task's splits are kept."""
    path = str(spec.path(config.data_dir, split))
    if not os.path.isfile(path):
        jglue_data.read_examples(spec, path)  # its error names the missing file
    tokenizer_files = [os.path.join(config.model_dir, name)
                       for name in ("vocab.txt", feats.TOKENIZER_CONFIG)]
    key = (spec.name, split, config.max_seq_length, _file_key(path),
           *(_file_key(f) for f in tokenizer_files if os.path.exists(f)))
    if key not in _INPUTS:
        if any(k[0] != spec.name for k in _INPUTS) or any(
                k[1] == split for k in _INPUTS):
            _INPUTS.clear()
        examples = jglue_data.read_examples(spec, path)
        tokenizer = feats.load_tokenizer(config.model_dir)
        _INPUTS[key] = build_inputs(spec, examples, tokenizer, config.max_seq_length,
                                    split == "train")
    return _INPUTS[key]


def finetune(config: FinetuneConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fine-tunes ``config.model_dir`` on ``config.task`` and scores it on the dev set.

    Returns:
      What ``metrics.json`` holds: ``task``, ``metrics``, ``hyperparameters``,
      ``train_examples``, ``dev_examples``, ``train_seconds``, ``device``, ...

    Raises:
      FileNotFoundError: the model directory or a data file is missing.
      ValueError: bad hyperparameters, a data file that cannot be read (the message
        names the file and line), or an output directory that holds another run.
    """
    import torch

    config = config.resolved()
    spec = get_task(config.task)
    _check_model_dir(config.model_dir)
    identity = config.identity()
    done = _finished(config.output_dir, identity)
    if done is not None:
        log(f"{spec.display_name}: already finished in {config.output_dir} "
            f"({json.dumps(done['metrics'])})")
        return done
    began = time.monotonic()
    train = _split_inputs(spec, config, "train")
    dev = _split_inputs(spec, config, "valid")
    train_examples, dev_examples = train.examples, dev.examples
    device = device_of()
    log(f"{spec.display_name}: {len(train_examples)} train / {len(dev_examples)} dev examples "
        f"({len(train.items)} / {len(dev.items)} inputs, tokenized in "
        f"{time.monotonic() - began:.1f} s); lr {config.learning_rate}, {config.epochs} "
        f"epochs, batch {config.batch_size}, max seq {config.max_seq_length}, seed "
        f"{config.seed}, on {device}")
    seed_everything(config.seed)
    model = build_model(spec, config.model_dir)
    os.makedirs(config.output_dir, exist_ok=True)
    checkpoint = os.path.join(config.output_dir, CHECKPOINT)
    trained = train_epochs(model, train.items, batch_size=config.batch_size,
                           learning_rate=config.learning_rate, epochs=config.epochs,
                           seed=config.seed, warmup_ratio=spec.warmup_ratio,
                           weight_decay=spec.weight_decay, device=device,
                           checkpoint=checkpoint, identity=identity, log=log)
    eval_began = time.monotonic()
    outputs = predict(model, dev.items, config.eval_batch_size, device)
    metrics, rows = score(spec, dev, outputs)
    result = {
        "task": spec.name, "display_name": spec.display_name, "metrics": metrics,
        "hyperparameters": config.hyperparameters(), "identity": identity,
        "train_examples": len(train_examples), "dev_examples": len(dev_examples),
        "train_inputs": len(train.items), "dev_inputs": len(dev.items),
        "steps": trained["steps"], "epoch_losses": trained["epoch_losses"],
        "train_seconds": round(trained["train_seconds"], 3),
        "eval_seconds": round(time.monotonic() - eval_began, 3),
        "resumed_from_epoch": trained["resumed_from_epoch"],
        "device": str(device), "torch": torch.__version__,
        "peak_gpu_memory_mb": (round(torch.cuda.max_memory_allocated(device) / 2**20)
                               if device.type == "cuda" else None),
        "dev_file": str(spec.path(config.data_dir, "valid")),
    }
    _save_model(model, config.model_dir, os.path.join(config.output_dir, MODEL_DIR))
    feats.dump_jsonl(os.path.join(config.output_dir, PREDICTIONS_FILE), rows)
    tmp = os.path.join(config.output_dir, METRICS_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(config.output_dir, METRICS_FILE))
    shutil.rmtree(checkpoint, ignore_errors=True)
    log(f"{spec.display_name}: dev {_metrics_text(metrics)}; wrote {config.output_dir}")
    return result


def _metrics_text(metrics: dict[str, float | None]) -> str:
    return ", ".join(f"{k} {'n/a' if v is None else f'{v:.4f}'}" for k, v in metrics.items())
