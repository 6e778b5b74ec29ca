"""``--init-from`` and ``--preset continue``: continued pretraining from a model.

A tiny model is trained 20 steps with ``bertjp train local``; a second run starts from
its weights (``--init-from MODEL_DIR``) at step 0. The preflight's messages, the preset's
steps and the TPU plan are checked without training.
"""

from __future__ import annotations

import io
import json
import math
import re

import pytest
import yaml

from bertjp.manifest import records_spec
from tests.training.test_local import VOCAB_DIR, _progress, _run
from training import configs, preflight, tpu
from training.local import init_from


def _args(prefix, model_dir, *extra):
    return ["--input", f"{prefix}-*.tfrecord.gz", "--max-predictions-per-seq", "20",
            "--global-batch-size", "16", "--steps-per-loop", "1", "--checkpoint-interval",
            "100", "--summary-interval", "100", "--validation-steps", "0",
            "--model-dir", str(model_dir), *map(str, extra)]


@pytest.fixture(scope="module")
def base_model(shards, tmp_path_factory):
    """A tiny model trained from scratch for 20 steps (logged every step)."""
    model_dir = tmp_path_factory.mktemp("base")
    code, stdout, stderr = _run(_args(shards, model_dir, "--vocab", VOCAB_DIR, "--size", "tiny",
                                      "--learning-rate", "3e-3", "--warmup-steps", "2",
                                      "--steps", 20))
    assert code == 0, stderr[-3000:]
    return model_dir, _progress(stdout)


def test_continued_training_starts_at_step_0_from_the_weights(shards, base_model, tmp_path):
    model_dir, scratch = base_model
    code, stdout, stderr = _run(_args(shards, tmp_path / "cont", "--init-from", model_dir,
                                      "--learning-rate", "1e-3", "--warmup-steps", "1",
                                      "--steps", 5))
    assert code == 0, stderr[-3000:]
    print(stdout)
    progress = _progress(stdout)
    # Fresh step counter (google-research/bert#632: never "already past max steps").
    assert [(s, t) for s, t, _ in progress] == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert "started at step 0" in stdout
    # The size came from the model's params.yaml (tiny), not the default base.
    params = yaml.safe_load((tmp_path / "cont" / "params.yaml").read_text())
    assert params["task"]["model"]["encoder"]["bert"]["num_layers"] == 2
    assert params["task"]["init_checkpoint"].startswith(str(model_dir))
    # It really started from those weights: far below a fresh model's first loss.
    assert progress[0][2] < scratch[0][2] - 1.0, (progress, scratch[:3])


def test_a_different_size_and_init_checkpoint_are_errors(shards, base_model, tmp_path):
    model_dir, _ = base_model
    with pytest.raises(ValueError, match=r"--size mini .*which is tiny"):
        _run(_args(shards, tmp_path / "m", "--init-from", model_dir, "--size", "mini"))
    with pytest.raises(ValueError, match="exclude each other"):
        _run(_args(shards, tmp_path / "m", "--init-from", model_dir,
                   "--init-checkpoint", model_dir))
    with pytest.raises(ValueError, match="new --model-dir"):
        _run(_args(shards, model_dir, "--init-from", model_dir, "--steps", 25))


def _fake_hf_dir(path, vocab_lines, max_positions=512):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({
        "model_type": "bert", "num_hidden_layers": 2, "hidden_size": 128,
        "num_attention_heads": 2, "intermediate_size": 512, "vocab_size": len(vocab_lines),
        "max_position_embeddings": max_positions}))
    (path / "vocab.txt").write_text("".join(t + "\n" for t in vocab_lines))
    return path


def test_preflight_names_another_vocabulary_and_too_long_records(shards, tmp_path, capsys):
    tokens = configs.vocab_tokens(str(VOCAB_DIR))
    other = _fake_hf_dir(tmp_path / "hf", [*tokens[:-1], "[別]"], max_positions=64)
    code, _, stderr = _run(_args(shards, tmp_path / "m", "--init-from", other,
                                 "--preflight-only"))
    assert code == 1
    assert f"make the records with --vocab {other}" in stderr
    assert ("seq length: the records have 128, more than the --init-from model's 64 max "
            "positions; make the records with --max-seq-length 64") in stderr
    same = _fake_hf_dir(tmp_path / "same", tokens)
    assert preflight.init_problems(preflight.load_manifest(str(shards)), init_dir=str(same),
                                   vocab_size=len(tokens), max_position_embeddings=512,
                                   vocab_dir=str(same)) == []
    assert init_from.resolve(str(same)).size == "tiny"


def test_preset_continue_derives_the_steps_from_epochs(shards, base_model, tmp_path):
    model_dir, _ = base_model
    instances = records_spec(preflight.load_manifest(str(shards))).instances
    code, stdout, stderr = _run(_args(shards, tmp_path / "p", "--init-from", model_dir,
                                      "--preset", "continue", "--epochs", "3",
                                      "--preflight-only"))
    assert code == 0, stderr
    steps = math.ceil(3 * instances / 16)
    warmup = round(steps * configs.CONTINUE_WARMUP_FRACTION)
    assert f"preset continue: {steps:,} steps, peak learning rate 2e-05, warmup {warmup}" \
        in stdout
    assert re.search(rf"^  train_steps: {steps}$", stdout, re.M)
    assert re.search(r"^  init_checkpoint: .*base", stdout, re.M)
    # Explicit flags win over the preset.
    code, stdout, _ = _run(_args(shards, tmp_path / "p", "--init-from", model_dir, "--preset",
                                 "continue", "--steps", 7, "--learning-rate", "1e-4",
                                 "--preflight-only"))
    assert "preset continue: 7 steps, peak learning rate 0.0001, warmup 0 steps" in stdout


def _tpu_args(init, *extra):
    return ["--project", "my-project", "--zone", "europe-west4-a", "--wikipedia-data",
            "gs://bkt/data/wiki", "--vocab", str(VOCAB_DIR), "--model-dir",
            "gs://bkt/models/cont", "--init-from", str(init), *map(str, extra)]


def test_tpu_plan_with_init_from_stages_the_checkpoint_and_runs_one_stage(base_model,
                                                                           capsys):
    model_dir, _ = base_model
    plan = tpu.build_plan(tpu.options_from_args(tpu.make_parser().parse_args(
        _tpu_args(model_dir, "--train-steps", 1000))))
    assert plan.kinds() == ["preflight", "status", "init", "local", "local", "create", "wait",
                            "remote", "start", "follow", "delete"]
    [stage] = plan.stages
    assert stage.number == 2 and stage.init_checkpoint == "gs://bkt/models/cont/init"
    assert stage.config.task.init_checkpoint == "gs://bkt/models/cont/init"
    assert stage.config.task.model.encoder.bert.num_layers == 2  # tiny, from params.yaml
    [init] = plan.find("init")
    assert init.argv[-1] == "gs://bkt/models/cont/init/"
    assert init.checkpoint.startswith(str(model_dir))
    tpu.print_plan(plan)
    assert "--init-from: stage " in capsys.readouterr().out


def test_tpu_preset_continue_and_one_stage(base_model, monkeypatch, shards):
    model_dir, _ = base_model
    manifest = preflight.load_manifest(str(shards))
    monkeypatch.setattr(preflight, "load_manifest", lambda path: manifest)
    options = tpu.options_from_args(tpu.make_parser().parse_args(
        _tpu_args(model_dir, "--preset", "continue", "--epochs", 2)))
    steps = math.ceil(2 * records_spec(manifest).instances / 512)
    assert options.train_steps[2] == steps
    assert options.learning_rate == configs.CONTINUE_LEARNING_RATE
    with pytest.raises(ValueError, match="one of"):
        tpu.options_from_args(tpu.make_parser().parse_args(
            [*_tpu_args(model_dir), "--cc100-data", "gs://bkt/data/cc"]))


def test_init_from_a_transformers_directory_imports_it(shards, base_model, tmp_path):
    """``bertjp convert`` the tiny model, then continue from that transformers directory."""
    from training import convert

    model_dir, scratch = base_model
    hf = tmp_path / "hf"
    assert convert.main(["--checkpoint", str(model_dir), "--vocab", str(VOCAB_DIR),
                         "--output", str(hf)]) == 0
    assert init_from.resolve(str(hf)).kind == "transformers"
    cont = tmp_path / "cont"
    code, stdout, stderr = _run(_args(shards, cont, "--init-from", hf, "--learning-rate",
                                      "1e-3", "--warmup-steps", "1", "--steps", 3))
    assert code == 0, stderr[-3000:]
    progress = _progress(stdout)
    assert [s for s, _, _ in progress] == [1, 2, 3]
    assert progress[0][2] < scratch[0][2] - 1.0, (progress, scratch[:3])
    assert (cont / "init" / "ckpt-0.index").exists()
    params = yaml.safe_load((cont / "params.yaml").read_text())
    assert params["task"]["init_checkpoint"] == str(cont / "init" / "ckpt-0")


def test_tpu_init_step_copies_the_checkpoint_and_a_state_file(base_model):
    from training.tpu import executor as tpu_executor

    model_dir, _ = base_model
    plan = tpu.build_plan(tpu.options_from_args(tpu.make_parser().parse_args(
        _tpu_args(model_dir, "--train-steps", 1000))))
    [step] = plan.find("init")
    calls = []

    def runner(argv, cwd=None, capture=False):
        calls.append(list(argv))
        return tpu_executor.CommandResult(0)

    tpu_executor.Executor(lambda: None, runner=runner, out=io.StringIO())._do_init(step)
    [argv] = calls
    name = step.checkpoint.rsplit("/", 1)[-1]
    assert argv[:3] == ["gcloud", "storage", "cp"] and argv[-1] == step.target + "/"
    assert f"{step.checkpoint}.index" in argv
    state = argv[-2]
    with open(state, encoding="utf-8") as f:
        assert f.read().startswith(f'model_checkpoint_path: "{name}"')
