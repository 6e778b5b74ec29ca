"""``bertjp train local``: real Model Garden training of a tiny BERT on the CPU.

The shards come from the pretraining-data job on the reference corpus (seq 128, 20
predictions); one module-scoped run trains 20 steps, the resume test continues it.
"""

import contextlib
import io
import pathlib
import re
import shlex

import pytest
import yaml

from tests.conftest import REFERENCE
from training import local

VOCAB_DIR = REFERENCE / "vocab" / "wordpiece_unidic_lite"
PROGRESS = re.compile(r"^progress \| step\s+(\d+)/(\d+) \| loss ([\d.]+) \|.*steps/s \| ETA ",
                      re.MULTILINE)


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


# ------------------------------------------------------------------ several --input values


def _parse(*argv):
    return local.options_from_args(local.make_parser().parse_args(["--model-dir", "m", *argv]))


@pytest.mark.parametrize("argv", [
    ["--input", "a/x-*.tfrecord.gz", "--input", "b/y-*.tfrecord.gz"],
    ["--input", "a/x-*.tfrecord.gz", "b/y-*.tfrecord.gz"],
    ["--input", "a/x-*.tfrecord.gz,b/y-*.tfrecord.gz"],
    ["--input", "a/x-*.tfrecord.gz", "b/y-*.tfrecord.gz", "--input", "a/x-*.tfrecord.gz"],
])
def test_every_input_pattern_is_read(argv):
    """Repeated, listed or comma-separated: all patterns reach Model Garden's input_path
    (which splits on commas); the validation data reads them too by default."""
    config = local.build_config(_parse(*argv, "--size", "tiny"), 100)
    assert config.task.train_data.input_path == "a/x-*.tfrecord.gz,b/y-*.tfrecord.gz"
    assert config.task.validation_data.input_path == config.task.train_data.input_path


def test_every_validation_input_pattern_is_read():
    args = _parse("--input", "t-*.tfrecord.gz", "--validation-input", "v1-*.tfrecord.gz",
                  "--validation-input", "v2-*.tfrecord.gz", "v3-*.tfrecord.gz")
    config = local.build_config(args, 100)
    assert config.task.validation_data.input_path == (
        "v1-*.tfrecord.gz,v2-*.tfrecord.gz,v3-*.tfrecord.gz")
    assert config.task.train_data.input_path == "t-*.tfrecord.gz"


def test_model_garden_reads_the_shards_of_every_pattern(shards):
    """Each shard named by its own --input: Model Garden's reader gets both files."""
    from official.core import input_reader

    names = [f"{shards}-0000{i}-of-00002.tfrecord.gz" for i in (0, 1)]
    config = local.build_config(_parse("--input", names[0], "--input", names[1],
                                       "--size", "tiny"), 100)
    assert sorted(input_reader.match_files(config.task.train_data.input_path)) == names


def test_preflight_accepts_the_shards_given_one_by_one(shards, tmp_path, capsys):
    names = [f"{shards}-0000{i}-of-00002.tfrecord.gz" for i in (0, 1)]
    argv = _args(shards, tmp_path / "m", "--preflight-only")
    argv[argv.index("--input") + 1:argv.index("--input") + 2] = names
    assert local.main(argv) == 0, capsys.readouterr().err
    assert "preflight: no problems" in capsys.readouterr().out
    argv.remove(names[1])  # one of the manifest's two shards, named: a deliberate subset
    assert local.main(argv) == 0, capsys.readouterr().err
    assert "preflight: no problems" in capsys.readouterr().out


# ------------------------------------------------------------------ preflight: the files


@pytest.fixture
def copied(shards, tmp_path):
    """A copy of the records (2 shards and their manifest) in a directory of its own."""
    import shutil

    for path in shards.parent.glob(f"{shards.name}*"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / shards.name


def _preflight(prefix, tmp_path, capsys, *extra):
    code = local.main(_args(prefix, tmp_path / "m", "--preflight-only", *extra))
    return code, capsys.readouterr()


def test_preflight_reports_files_of_another_run(copied, tmp_path, capsys):
    """5 files against a 2-shard manifest: the 3 of an earlier 3-shard run are named."""
    for i in range(3):
        (copied.parent / f"data-0000{i}-of-00003.tfrecord.gz").write_bytes(b"old")
    code, out = _preflight(copied, tmp_path, capsys)
    assert code == 1
    assert "preflight: 3 problem(s):" in out.err
    for i in range(3):
        assert re.search(rf"files: .*data-0000{i}-of-00003\.tfrecord\.gz is not in "
                         r".*data\.manifest\.json", out.err)
    assert "preflight: no problems" not in out.out


def test_preflight_reports_a_truncated_shard(copied, tmp_path, capsys):
    shard = copied.parent / "data-00001-of-00002.tfrecord.gz"
    size = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[: size // 2])
    code, out = _preflight(copied, tmp_path, capsys)
    assert code == 1
    assert re.search(rf"files: .*data-00001-of-00002\.tfrecord\.gz has {size // 2:,} bytes, "
                     rf".*data\.manifest\.json says {size:,} \(truncated", out.err)


def test_preflight_reports_a_missing_shard_and_an_empty_pattern(copied, tmp_path, capsys):
    (copied.parent / "data-00000-of-00002.tfrecord.gz").unlink()
    code, out = _preflight(copied, tmp_path, capsys, "--validation-input",
                           str(tmp_path / "nothing-*.tfrecord.gz"))
    assert code == 1
    assert "files: 1 of the 2 files" in out.err and "data-00000-of-00002" in out.err
    assert f"--validation-input {tmp_path / 'nothing-*.tfrecord.gz'} matches no files" \
        in out.err


def test_preflight_checks_the_files_against_an_explicit_manifest(copied, tmp_path, capsys):
    (copied.parent / "data-00000-of-00003.tfrecord.gz").write_bytes(b"old")
    moved = tmp_path / "elsewhere.json"
    (copied.parent / "data.manifest.json").rename(moved)
    code, out = _preflight(copied, tmp_path, capsys, "--manifest", moved)
    assert code == 1
    assert re.search(r"files: .*data-00000-of-00003\.tfrecord\.gz is not in .*elsewhere\.json",
                     out.err)


# ------------------------------------------------------------------ the learning rate


def test_a_warmup_longer_than_the_run_is_clipped_with_a_warning(shards, tmp_path, capsys):
    argv = _args(shards, tmp_path / "m", "--preflight-only", "--steps", 2000)
    argv[argv.index("--warmup-steps") + 1] = "10000"
    assert local.main(argv) == 0
    out = capsys.readouterr()
    assert ("warning: --warmup-steps 10000 is more than 10 % of --steps 2000; warming up for "
            "200 steps instead") in out.err
    lines = out.out.splitlines()  # the manifest's line, the config, "preflight: ..."
    params = yaml.safe_load("\n".join(lines[1:-1]))
    optimizer = params["trainer"]["optimizer_config"]
    assert optimizer["warmup"]["polynomial"]["warmup_steps"] == 200
    assert optimizer["learning_rate"]["polynomial"]["offset"] == 200
    assert local.main(_args(shards, tmp_path / "m", "--preflight-only", "--steps", 20)) == 0
    assert "warning" not in capsys.readouterr().err  # 2 warmup steps: 10 % of 20


README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
LR = re.compile(r"^progress \| step\s+(\d+)/\d+ \|.*\| lr ([-+.\deE]+) \|", re.MULTILINE)


def _readme_local_example() -> list[str]:
    """The ``bertjp train local`` command of the README's local training section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Local training: `bertjp train local`"):]
    block = section[section.index("```sh\n") + 6:]
    block = block[:block.index("```")]
    commands = [shlex.split(c) for c in block.replace("\\\n", " ").splitlines() if c.strip()]
    [command] = [c for c in commands if c[:3] == ["bertjp", "train", "local"]]
    return command[3:]


def _replace(argv: list[str], values: dict[str, str]) -> list[str]:
    argv = list(argv)
    for flag, value in values.items():
        assert flag in argv, f"the README's example has no {flag}"
        argv[argv.index(flag) + 1] = value
    return argv


def test_the_readme_example_learns(shards, tmp_path):
    """The README's command, on the fixture records and vocabulary, for 20 steps (batch 8,
    no evaluation: faster, the same schedule): the learning rate rises through the warmup
    (10 % of the steps), then falls to 0."""
    argv = _replace(_readme_local_example(), {
        "--input": f"{shards}-*.tfrecord.gz", "--vocab": str(VOCAB_DIR),
        "--model-dir": str(tmp_path / "model"), "--steps": "20", "--global-batch-size": "8"})
    code, stdout, stderr = _run([*argv, "--steps-per-loop", "1", "--validation-steps", "0"])
    assert code == 0, stderr[-3000:]
    rates = {int(step): float(lr) for step, lr in LR.findall(stdout)}
    assert sorted(rates) == list(range(1, 21)), stdout
    peak = 1e-4  # the default learning rate
    # the rate shown after step k is the one of the next update: warmup 2 steps
    assert rates[1] == pytest.approx(peak / 2, rel=1e-2)
    assert rates[2] == pytest.approx(peak, rel=1e-2)
    assert all(rates[k] > rates[k + 1] for k in range(2, 20))
    assert min(rates[k] for k in range(1, 20)) > 0 and rates[20] == 0
    assert "warning: --warmup-steps 10000 is more than 10 % of --steps 20" in stderr
