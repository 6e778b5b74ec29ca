"""Continued pretraining, the whole path on the fixtures: a small transformers model (fixed
seed) → ``bertjp import`` → ``pretraining-data`` with its vocabulary on a domain corpus →
``bertjp train local --init-from`` → ``bertjp convert`` → transformers fill-mask."""

import contextlib
import io
import re

import numpy as np

from bertjp.records import decode_example, iter_records
from bertjp.streams import open_decompressed
from pipelines import pretraining_data
from tests.conftest import REFERENCE
from tests.training.test_import import _garden_model, _make_model
from training import local
from training.convert import convert
from training.importer import import_model

DOMAIN_CORPUS = REFERENCE / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz"
PROGRESS = re.compile(r"^progress \| step\s+(\d+)/\d+ \| loss [\d.]+ \| mlm ([\d.]+) \|",
                      re.MULTILINE)


def _first_records(prefix, count):
    """The first ``count`` records of the first shard as model inputs."""
    path = next(prefix.parent.glob(f"{prefix.name}-*.tfrecord.gz"))
    examples = []
    with open(path, "rb") as raw:
        stream, _ = open_decompressed(raw, str(path))
        for data in iter_records(stream):
            examples.append(decode_example(data))
            if len(examples) == count:
                break
    return {name: np.array([e[name][1] for e in examples],
                           np.float32 if name == "masked_lm_weights" else np.int32)
            for name in examples[0]}


def _hf_mlm_loss(model_dir, batch):
    import torch
    from transformers import BertForPreTraining

    model = BertForPreTraining.from_pretrained(str(model_dir)).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(batch["input_word_ids"]).long(),
                       token_type_ids=torch.from_numpy(batch["input_type_ids"]).long(),
                       attention_mask=torch.from_numpy(batch["input_mask"]).long()
                       ).prediction_logits.numpy()
    return _masked_loss(np.take_along_axis(
        logits, batch["masked_lm_positions"][..., None], axis=1), batch)


def _garden_mlm_loss(imported, batch):
    """The loss of the weights `train local --init-from` starts from: Model Garden's own
    ``task.initialize`` with ``init_checkpoint`` = the imported checkpoint."""
    import tensorflow as tf

    task, model = _garden_model(imported, init_checkpoint=imported.output)
    task.initialize(model)
    out = model({k: tf.constant(v) for k, v in batch.items()
                 if k in ("input_word_ids", "input_type_ids", "input_mask",
                          "masked_lm_positions")}, training=False)
    return _masked_loss(out["mlm_logits"].numpy(), batch)


def _masked_loss(logits, batch):
    logits = logits.astype(np.float64)
    logits -= logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, batch["masked_lm_ids"][..., None], -1)[..., 0]
    weights = batch["masked_lm_weights"]
    return float(-(picked * weights).sum() / weights.sum())


def test_continue_from_a_transformers_model(tmp_path):
    source = _make_model(tmp_path / "released", seed=3)
    imported = import_model(str(source), str(tmp_path / "imported"), log=lambda _: None)
    prefix = tmp_path / "records" / "domain"
    pretraining_data.run(["--input", str(DOMAIN_CORPUS), "--vocab", str(imported.vocab_dir),
                          "--output", str(prefix), "--num-shards", "1", "--dupe-factor", "1",
                          "--max-seq-length", "128", "--max-predictions-per-seq", "20"])
    # Step 0: the weights training starts from give the released model's loss on a batch.
    batch = _first_records(prefix, 8)
    released_loss = _hf_mlm_loss(source, batch)
    assert abs(_garden_mlm_loss(imported, batch) - released_loss) < 1e-4

    model_dir = tmp_path / "continued"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = local.main([
            "--input", f"{prefix}-*.tfrecord.gz", "--init-from", str(source),
            "--max-predictions-per-seq", "20", "--global-batch-size", "8",
            "--learning-rate", "3e-3", "--warmup-steps", "1", "--steps", "8",
            "--steps-per-loop", "1", "--checkpoint-interval", "8", "--validation-steps", "1",
            "--model-dir", str(model_dir)])
    assert code == 0, out.getvalue()[-2000:]
    steps = [(int(step), float(mlm)) for step, mlm in PROGRESS.findall(out.getvalue())]
    assert [s for s, _ in steps] == list(range(1, 9))  # from step 0, not a resumed counter
    first, last = steps[0][1], steps[-1][1]
    # Step 1 is computed with the imported weights (another batch: a loose bound) ...
    assert abs(first - released_loss) < 0.15 * released_loss, (first, released_loss)
    assert last < first  # ... and the loss falls from there.

    hf_dir = tmp_path / "hf"
    convert(str(model_dir), str(imported.vocab_dir), str(hf_dir), log=lambda _: None)
    from transformers import pipeline

    fill = pipeline("fill-mask", model=str(hf_dir), tokenizer=str(hf_dir))
    answers = fill("東北大学で[MASK]然言語処理を研究する。")
    assert len(answers) == 5 and all(a["token_str"] for a in answers)
