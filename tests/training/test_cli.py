"""``bertjp train`` dispatch and ``bertjp convert`` wiring."""

import pytest

import bertjp_cli


def test_train_help_lists_the_subcommands(capsys):
    assert bertjp_cli.main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "bertjp train {local,tpu}" in out and "local" in out and "tpu" in out


def test_unknown_train_subcommand(capsys):
    assert bertjp_cli.main(["train", "gpu-cluster"]) == 2
    assert "unknown subcommand 'gpu-cluster'" in capsys.readouterr().err


@pytest.mark.parametrize("argv,words", [
    (["train", "local", "--help"], ["--model-dir", "--preflight-only"]),
    (["train", "tpu", "--help"], ["--dry-run", "--keep-vm", "--zone"]),
    (["convert", "--help"], ["--checkpoint", "--vocab", "--output"]),
])
def test_subcommand_help(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        bertjp_cli.main(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(w in out for w in words), out
