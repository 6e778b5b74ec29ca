"""One source for every default: the library, the CLI, presets and training agree."""

import pytest

from bertjp import defaults
from bertjp.instances import InstanceConfig
from pipelines import common, pretraining_data
from tests.conftest import REFERENCE
from training import configs

VOCAB = REFERENCE / "vocab" / "wordpiece_unidic_lite"


def _config(*flags):
    args = pretraining_data.make_parser().parse_args(
        ["--input", "x", "--vocab", str(VOCAB), "--output", "o", *flags])
    return pretraining_data.config_from_args(args)


def test_the_cli_defaults_are_the_library_defaults_are_the_reference_scripts():
    config = _config()
    assert config.instance == InstanceConfig()
    ref = defaults.REFERENCE_SCRIPT
    assert (config.instance.max_seq_length, config.instance.max_predictions_per_seq,
            config.dupe_factor, config.seed) == (ref.max_seq_length,
                                                 ref.max_predictions_per_seq,
                                                 ref.dupe_factor, ref.random_seed) == (
        128, 20, 10, 12345)


@pytest.mark.parametrize("preset,seq,preds,dupe", [("v3-cc100", 128, 19, 5),
                                                    ("v3-wikipedia", 512, 76, 30)])
def test_a_preset_sets_the_recipe_stage_and_explicit_flags_override_it(preset, seq, preds,
                                                                        dupe):
    config = _config("--preset", preset)
    assert (config.instance.max_seq_length, config.instance.max_predictions_per_seq,
            config.dupe_factor, config.preset) == (seq, preds, dupe, preset)
    assert config.instance.masked_lm_prob == 0.15
    override = _config("--preset", preset, "--dupe-factor", "2", "--max-predictions-per-seq",
                       "7")
    assert (override.instance.max_seq_length, override.instance.max_predictions_per_seq,
            override.dupe_factor) == (seq, 7, 2)


def test_the_training_data_specs_read_the_presets_records():
    for data, preset in (("cc100", "v3-cc100"), ("wikipedia", "v3-wikipedia")):
        spec, p = configs.DATA[data], defaults.PRESETS[preset]
        assert (spec.seq_length, spec.max_predictions_per_seq) == (
            p.max_seq_length, p.max_predictions_per_seq)
    assert configs.MAX_POSITION_EMBEDDINGS == pretraining_data.MAX_SEQ_LENGTH == 512


def test_shared_io_defaults_have_one_source():
    for make in (pretraining_data.make_parser,):
        args = make().parse_args(["--input", "x", "--vocab", "v", "--output", "o"])
        assert args.max_line_bytes == defaults.MAX_LINE_BYTES
    assert common.JobConfig(inputs=("x",), output="o").max_line_bytes == defaults.MAX_LINE_BYTES
    assert common.JobConfig(inputs=("x",), output="o").chunk_bytes == defaults.CHUNK_BYTES
