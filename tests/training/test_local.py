"""``bertjp train local``: real Model Garden training of a tiny BERT on the CPU.

The shards come from the pretraining-data job on the reference corpus (seq 128, 20
predictions); one module-scoped run trains 20 steps, the resume test continues it.
"""

import contextlib
import io
import re

import pytest
import yaml

from pipelines import pretraining_data
from tests.conftest import REFERENCE
from training import local

CORPUS = REFERENCE / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz"
VOCAB_DIR = REFERENCE / "vocab" / "wordpiece_unidic_lite"
PROGRESS = re.compile(r"^progress \| step\s+(\d+)/(\d+) \| loss ([\d.]+) \|.*steps/s \| ETA ",
                      re.MULTILINE)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Prefix of two small real shards (and their manifest)."""
    prefix = tmp_path_factory.mktemp("ptd") / "data"
    pretraining_data.run(["--input", str(CORPUS), "--vocab", str(VOCAB_DIR),
                          "--output", str(prefix), "--num-shards", "2", "--dupe-factor", "1",
                          "--max-seq-length", "128", "--max-predictions-per-seq", "20"])
    return prefix


def _args(prefix, model_dir, *extra):
    return ["--input", f"{prefix}-*.tfrecord.gz", "--vocab", str(VOCAB_DIR),
            "--size", "tiny", "--max-predictions-per-seq", "20", "--global-batch-size", "16",
            "--learning-rate", "3e-3", "--warmup-steps", "2", "--steps-per-loop", "5",
            "--checkpoint-interval", "10", "--summary-interval", "5", "--validation-steps", "2",
            "--model-dir", str(model_dir), *map(str, extra)]


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = local.main(argv)
    return code, out.getvalue(), err.getvalue()


def _progress(stdout):
    return [(int(step), int(total), float(loss)) for step, total, loss in PROGRESS.findall(stdout)]


@pytest.fixture(scope="module")
def first_run(shards, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("model")
    code, stdout, stderr = _run(_args(shards, model_dir, "--steps", 20))
    return {"code": code, "stdout": stdout, "stderr": stderr, "model_dir": model_dir,
            "shards": shards}


def test_training_lowers_the_loss_and_writes_checkpoints(first_run):
    assert first_run["code"] == 0, first_run["stderr"][-3000:]
    stdout, model_dir = first_run["stdout"], first_run["model_dir"]
    print(stdout)  # shown by pytest when an assertion fails
    progress = _progress(stdout)
    assert [(s, t) for s, t, _ in progress] == [(5, 20), (10, 20), (15, 20), (20, 20)]
    losses = [loss for _, _, loss in progress]
    # A fresh BERT's MLM loss is about ln(32768) = 10.4 plus NSP's ln 2.
    assert 9.0 < losses[0] < 12.5
    # At 3e-3 the last two losses were 1.8-2.4 below the first in every probe run
    # (at 1e-3 only 0.4-1.0: too close to the noise of unseeded training).
    assert sum(losses[-2:]) / 2 < losses[0] - 1.0, losses
    # tf.train.CheckpointManager saves at the first loop's end, then when
    # checkpoint_interval steps have passed since, and at the end of training.
    assert sorted(int(p.name[5:-6]) for p in model_dir.glob("ckpt-*.index")) == [5, 15, 20]
    assert list(model_dir.glob("train/events.out.tfevents.*"))
    assert list(model_dir.glob("validation/events.out.tfevents.*"))
    assert re.search(r"^final loss [\d.]+ at step 20 \(started at step 0\)$", stdout, re.M)
    assert f"checkpoint: {model_dir / 'ckpt-20'}" in stdout
    assert f"tensorboard --logdir {model_dir}" in stdout
    assert re.search(r"^validation: .*masked_lm_accuracy [\d.]+", stdout, re.M)


def test_params_yaml_is_the_experiment(first_run):
    params = yaml.safe_load((first_run["model_dir"] / "params.yaml").read_text())
    assert params["trainer"]["train_steps"] == 20
    assert params["trainer"]["steps_per_loop"] == 5
    bert = params["task"]["model"]["encoder"]["bert"]
    assert (bert["num_layers"], bert["hidden_size"], bert["vocab_size"]) == (2, 128, 32768)
    data = params["task"]["train_data"]
    assert (data["seq_length"], data["max_predictions_per_seq"], data["global_batch_size"]) == (
        128, 20, 16)
    assert data["input_path"] == f"{first_run['shards']}-*.tfrecord.gz"
    assert params["runtime"]["distribution_strategy"] == "one_device"


def test_running_again_resumes_from_the_latest_checkpoint(first_run):
    assert first_run["code"] == 0
    model_dir = first_run["model_dir"]
    code, stdout, stderr = _run(_args(first_run["shards"], model_dir, "--steps", 25))
    assert code == 0, stderr[-3000:]
    assert f"resuming from {model_dir / 'ckpt-20'}" in stdout
    assert [(s, t) for s, t, _ in _progress(stdout)] == [(25, 25)]
    assert re.search(r"^final loss [\d.]+ at step 25 \(started at step 20\)$", stdout, re.M)
    assert (model_dir / "ckpt-25.index").exists()
    assert yaml.safe_load((model_dir / "params.yaml").read_text())["trainer"]["train_steps"] == 25


def test_a_model_dir_of_another_model_is_refused(first_run):
    assert first_run["code"] == 0
    argv = _args(first_run["shards"], first_run["model_dir"], "--steps", 30)
    argv[argv.index("tiny")] = "mini"
    with pytest.raises(ValueError, match="different model .*hidden_size"):
        _run(argv)


def test_preflight_only_on_mismatched_data_exits_1_naming_the_seq_length(shards, tmp_path,
                                                                          capsys):
    argv = _args(shards, tmp_path / "m", "--preflight-only")
    at = argv.index("--max-predictions-per-seq")
    del argv[at:at + 2]  # the wikipedia stage's 76
    argv += ["--data", "wikipedia"]
    assert local.main(argv) == 1
    out = capsys.readouterr()
    assert re.search(r"seq length: the records have 128, the experiment expects 512", out.err)
    assert "preflight: 2 problem(s):" in out.err  # seq length and max predictions (20 vs 76)
    assert "seq_length: 512" in out.out  # the config is printed
    assert not (tmp_path / "m").exists()


def test_preflight_only_accepts_matching_records(shards, tmp_path, capsys):
    assert local.main(_args(shards, tmp_path / "m", "--preflight-only")) == 0
    out = capsys.readouterr().out
    assert "preflight: no problems" in out
    assert re.search(r"^manifest .*data\.manifest\.json: [\d,]+ instances in 2 shard", out, re.M)
    assert not (tmp_path / "m").exists()


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no manifest at .*nothing\.manifest\.json"):
        local.main(["--input", str(tmp_path / "nothing-*.tfrecord.gz"),
                    "--model-dir", str(tmp_path / "m")])


@pytest.mark.parametrize("pattern, manifest", [
    ("out/data/cc100-*.tfrecord.gz", "out/data/cc100.manifest.json"),
    ("gs://b/d/wiki-*-of-*.tfrecord.gz", "gs://b/d/wiki.manifest.json"),
    ("out/cc-100-00003-of-00008.tfrecord.gz", "out/cc-100.manifest.json"),
])
def test_default_manifest_path(pattern, manifest):
    assert local.default_manifest_path(pattern) == manifest


def test_default_manifest_path_needs_a_shard_pattern():
    with pytest.raises(ValueError, match="pass --manifest"):
        local.default_manifest_path("out/data/*.gz")


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        local.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--input", "--manifest", "--vocab", "--size", "--data", "--steps",
                   "--preflight-only", "--print-config", "--model-dir", "--validation-steps"):
        assert option in text
