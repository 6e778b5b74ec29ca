"""The estimate reads its flags once, and copies nothing of the pipelines."""

from __future__ import annotations

import pathlib

import pytest

import bertjp_cli.estimate
from bertjp_cli.estimate import EstimateConfig, parse_config

PACKAGE = pathlib.Path(bertjp_cli.estimate.__file__).parent


def test_flags_become_a_config_with_the_commands_defaults():
    config = parse_config(["--input", "a.json.gz", "--input", "b.json.gz", "--ssd"])
    assert isinstance(config, EstimateConfig)
    assert config.inputs == ("a.json.gz", "b.json.gz") and config.ssd
    assert (config.kind, config.sample_mb, config.workers, config.machine_type) == (
        "auto", 4.0, 32, "n1-standard-4")
    assert (config.dupe_factor, config.max_seq_length, config.max_predictions_per_seq,
            config.bucket_documents) == (10, 128, 20, 256)
    assert config.corpus_shards is None and config.vocab is None
    assert config.sample_bytes == 4_000_000


def test_an_unknown_machine_type_fails_before_any_work():
    with pytest.raises(ValueError, match="unknown machine type 'n1-standard-3'"):
        parse_config(["--input", "nothing-*", "--machine-type", "n1-standard-3"])


def test_only_the_cli_module_sees_the_command_line():
    for path in PACKAGE.glob("*.py"):
        if path.name not in ("cli.py", "__init__.py"):
            assert "argparse" not in path.read_text(encoding="utf-8"), path.name


@pytest.mark.parametrize("copied", ["stable_key", "array.array", "bucket_instances",
                                    "12345", "compresslevel", "InstanceEncoder"])
def test_no_pipeline_logic_is_copied(copied):
    for path in PACKAGE.glob("*.py"):
        assert copied not in path.read_text(encoding="utf-8"), (copied, path.name)
