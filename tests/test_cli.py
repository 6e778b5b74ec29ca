"""The ``bertjp`` console script: help, dispatch and pass-through of Beam flags."""

import subprocess
import sys

import pytest

import bertjp_cli
from pipelines.options import LOCAL_RUNNER, _local_runner
from tests.conftest import CC100

BERTJP = [sys.executable, "-m", "bertjp_cli"]


def test_top_level_help_lists_every_command(capsys):
    assert bertjp_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in bertjp_cli.COMMANDS:
        assert name in out


def test_no_command_is_a_usage_error(capsys):
    assert bertjp_cli.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("usage: bertjp COMMAND")
    result = subprocess.run(BERTJP, capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert "usage: bertjp COMMAND" in result.stderr and "validate" in result.stderr
    help_ = subprocess.run([*BERTJP, "--help"], capture_output=True, text=True)
    assert help_.returncode == 0 and help_.stdout.startswith("usage: bertjp COMMAND")


def test_unknown_command(capsys):
    assert bertjp_cli.main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(bertjp_cli.COMMANDS))
def test_every_command_has_help(name):
    result = subprocess.run([*BERTJP, name, "--help"], capture_output=True, text=True,
                            check=True)
    assert result.stdout.startswith(f"usage: bertjp {name}")
    if ":" not in bertjp_cli.COMMANDS[name][0]:  # a Beam job, not a local tool
        assert "--input" in result.stdout and "--output" in result.stdout
        assert "DataflowRunner" in result.stdout  # Beam options are documented
    # main suggests --verbose after an error exactly to the commands that have it
    helps = [result.stdout] if name != "train" else [
        subprocess.run([*BERTJP, name, sub, "--help"], capture_output=True, text=True,
                       check=True).stdout for sub in ("local", "tpu")]
    for text in helps:
        assert ("--verbose" in text) == (name in bertjp_cli.VERBOSE_COMMANDS), name


def test_inspect_and_validate_take_input_like_every_command():
    for name in ("inspect", "validate"):
        result = subprocess.run([*BERTJP, name, "--help"], capture_output=True, text=True,
                                check=True)
        assert "--input GLOB [GLOB ...]" in result.stdout and "--verbose" in result.stdout


def _failing_command(argv):
    raise ValueError("first line\nsomething broke")


def test_verbose_is_suggested_only_to_commands_that_have_it(monkeypatch, capsys):
    monkeypatch.setitem(bertjp_cli.COMMANDS, "no-verbose",
                        ("tests.test_cli:_failing_command", "a command without --verbose"))
    assert bertjp_cli.main(["no-verbose"]) == 1
    assert capsys.readouterr().err == "bertjp no-verbose: error: something broke\n"
    monkeypatch.setattr(bertjp_cli, "VERBOSE_COMMANDS",
                        bertjp_cli.VERBOSE_COMMANDS | {"no-verbose"})
    assert bertjp_cli.main(["no-verbose"]) == 1
    assert "(run with --verbose for the traceback)" in capsys.readouterr().err


def test_a_flag_nobody_knows_is_an_error_not_a_silent_no_op(tmp_path):
    result = subprocess.run(
        [*BERTJP, "cc100-corpus", "--input", str(CC100), "--output", str(tmp_path / "x"),
         "--num-shard", "3"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unrecognized arguments: --num-shard" in result.stderr
    assert not list(tmp_path.iterdir())


def test_beam_flags_pass_through_and_the_console_script_runs(tmp_path):
    result = subprocess.run(
        [*BERTJP, "cc100-corpus", "--input", str(CC100), "--output", str(tmp_path / "x"),
         "--num-shards", "2", "--runner", "DirectRunner", "--direct_num_workers", "1"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"running on {LOCAL_RUNNER}" in result.stderr
    assert "cc100-corpus finished" in result.stdout and "536 in, 536 out" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "x-00000-of-00002.txt", "x-00001-of-00002.txt", "x.dead-letter.jsonl",
        "x.manifest.json"]


@pytest.mark.parametrize("args,expected", [
    ([], [f"--runner={LOCAL_RUNNER}"]),
    (["--runner", "DirectRunner", "--x=1"], [f"--runner={LOCAL_RUNNER}", "--x=1"]),
    (["--runner=DataflowRunner"], ["--runner=DataflowRunner"]),
    (["--runner", "PrismRunner"], ["--runner=PrismRunner"]),
])
def test_local_runs_never_try_to_download_prism(args, expected):
    assert _local_runner(args) == expected


def test_a_failing_job_ends_with_a_one_line_error(tmp_path):
    truncated = tmp_path / "cut.txt.xz"
    truncated.write_bytes(CC100.read_bytes()[:50_000])
    result = subprocess.run(
        [*BERTJP, "cc100-corpus", "--input", str(truncated), "--output", str(tmp_path / "x")],
        capture_output=True, text=True)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()
    assert "error:" in last[-2] and "cut.txt.xz" in last[-2] and "truncated" in last[-2]
    assert "Traceback" not in result.stderr
