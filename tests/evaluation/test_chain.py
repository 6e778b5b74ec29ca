"""The whole chain ends in a JGLUE score: records → `bertjp train local` (BERT-Tiny, a few
Model Garden steps) → `bertjp convert` → `bertjp finetune` on the JGLUE sample."""

import json

import bertjp_cli
from pipelines import pretraining_data
from tests.conftest import REFERENCE
from tests.evaluation.test_finetune import make_jglue_dir

CORPUS = REFERENCE / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz"
VOCAB_DIR = REFERENCE / "vocab" / "wordpiece_unidic_lite"


def test_a_model_made_by_the_local_trainer_is_fine_tuned_and_scored(tmp_path):
    prefix = tmp_path / "records" / "data"
    pretraining_data.run(["--input", str(CORPUS), "--vocab", str(VOCAB_DIR), "--output",
                          str(prefix), "--num-shards", "1", "--dupe-factor", "1",
                          "--preset", "v3-cc100"])
    model_dir = tmp_path / "model"
    assert bertjp_cli.main([
        "train", "local", "--input", f"{prefix}-*.tfrecord.gz", "--vocab", str(VOCAB_DIR),
        "--size", "tiny", "--steps", "4", "--global-batch-size", "8", "--warmup-steps", "1",
        "--steps-per-loop", "2", "--checkpoint-interval", "4", "--validation-steps", "1",
        "--model-dir", str(model_dir)]) == 0
    hf_dir = tmp_path / "hf"
    assert bertjp_cli.main(["convert", "--checkpoint", str(model_dir), "--vocab",
                            str(VOCAB_DIR), "--output", str(hf_dir)]) == 0
    data = make_jglue_dir(tmp_path / "datasets")
    out = tmp_path / "jnli"
    assert bertjp_cli.main(["finetune", "--task", "jnli", "--model", str(hf_dir), "--data",
                            str(data), "--output", str(out), "--epochs", "1",
                            "--batch-size", "8"]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert 0.0 <= metrics["metrics"]["accuracy"] <= 1.0
    assert (out / "model" / "config.json").exists() and (out / "predictions.jsonl").exists()
