"""training.configs: sizes, the recipe's experiment configs, YAML and registration."""

import argparse

import pytest

from tests.conftest import REFERENCE
from training import configs

VOCABS = REFERENCE / "vocab"
WORDPIECE = VOCABS / "wordpiece_unidic_lite"
CHARACTER = VOCABS / "character_unidic_lite"


def test_compact_grid_has_24_sizes_with_64_wide_heads():
    grid = [n for n in configs.size_names() if n.startswith("L")]
    assert len(grid) == 24
    for layers in (2, 4, 6, 8, 10, 12):
        for hidden in (128, 256, 512, 768):
            size = configs.model_size(f"L{layers}_H{hidden}")
            assert size == configs.ModelSize(layers, hidden, hidden // 64, 4 * hidden)


@pytest.mark.parametrize("name,shape", [
    ("base", (12, 768, 12, 3072)),
    ("large", (24, 1024, 16, 4096)),
    ("tiny", (2, 128, 2, 512)),
    ("mini", (4, 256, 4, 1024)),
    ("small", (4, 512, 8, 2048)),
    ("medium", (8, 512, 8, 2048)),
])
def test_named_sizes(name, shape):
    assert configs.model_size(name) == configs.ModelSize(*shape)


def test_base_is_the_largest_compact_size():
    assert configs.model_size("base") == configs.model_size("L12_H768")


@pytest.mark.parametrize("name", ["huge", "L3_H128", "L4_H300", "L24_H1024", ""])
def test_unknown_size_lists_the_valid_ones(name):
    with pytest.raises(ValueError, match="valid sizes: .*base.*large.*L4_H256"):
        configs.model_size(name)


def test_data_stages():
    assert configs.DATA["cc100"] == configs.DataSpec(128, 19, 2048)
    assert configs.DATA["wikipedia"] == configs.DataSpec(512, 76, 512)


@pytest.mark.parametrize("vocab,size", [(WORDPIECE, 32768), (CHARACTER, 7027),
                                        (WORDPIECE / "vocab.txt", 32768)])
def test_vocab_size_of_the_released_vocabularies(vocab, size):
    assert configs.vocab_size_of(str(vocab)) == size


def test_vocab_size_of_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no vocabulary file at .*vocab.txt"):
        configs.vocab_size_of(str(tmp_path))


@pytest.mark.parametrize("size,data,batch,seq,preds,lr", [
    ("base", "cc100", 2048, 128, 19, 1e-4),
    ("base", "wikipedia", 512, 512, 76, 1e-4),
    ("large", "cc100", 2048, 128, 19, 5e-5),
    ("large", "wikipedia", 512, 512, 76, 5e-5),
])
def test_recipe_configs(size, data, batch, seq, preds, lr):
    config = configs.experiment_config(size, 32768, data, "gs://b/data-*.tfrecord.gz")
    shape = configs.model_size(size)
    bert = config.task.model.encoder.bert
    assert config.task.model.encoder.type == "bert"
    assert (bert.num_layers, bert.hidden_size, bert.num_attention_heads,
            bert.intermediate_size) == (shape.num_layers, shape.hidden_size, shape.num_heads,
                                        shape.intermediate_size)
    assert (bert.vocab_size, bert.hidden_activation, bert.dropout_rate,
            bert.attention_dropout_rate, bert.initializer_range, bert.max_position_embeddings,
            bert.type_vocab_size) == (32768, "gelu", 0.1, 0.1, 0.02, 512, 2)
    [head] = config.task.model.cls_heads
    assert (head.name, head.num_classes, head.inner_dim, head.activation, head.dropout_rate,
            head.cls_token_idx) == ("next_sentence", 2, shape.hidden_size, "tanh", 0.1, 0)
    for data_config, training in ((config.task.train_data, True),
                                  (config.task.validation_data, False)):
        assert data_config.input_path == "gs://b/data-*.tfrecord.gz"
        assert (data_config.global_batch_size, data_config.seq_length,
                data_config.max_predictions_per_seq) == (batch, seq, preds)
        assert data_config.use_next_sentence_label and data_config.use_v2_feature_names
        assert not data_config.use_position_id
        assert data_config.file_type == "tfrecord_compressed"
        assert data_config.is_training is training and data_config.drop_remainder is training
    _assert_recipe_trainer(config.trainer, lr)
    assert config.task.init_checkpoint == ""


def _assert_recipe_trainer(trainer, lr):
    assert (trainer.train_steps, trainer.checkpoint_interval, trainer.max_to_keep,
            trainer.steps_per_loop, trainer.summary_interval, trainer.validation_interval,
            trainer.validation_steps) == (1_000_000, 20_000, 5, 1000, 1000, 1000, 64)
    opt = trainer.optimizer_config
    assert opt.optimizer.type == "adamw"
    assert opt.optimizer.adamw.weight_decay_rate == 0.01
    assert list(opt.optimizer.adamw.exclude_from_weight_decay) == [
        "LayerNorm", "layer_norm", "bias"]
    poly = opt.learning_rate.polynomial
    assert opt.learning_rate.type == "polynomial"
    # the decay starts at the end of the warmup (offset) and reaches 0 at step 1M
    assert (poly.initial_learning_rate, poly.decay_steps, poly.offset, poly.end_learning_rate,
            poly.power, poly.cycle) == (lr, 990_000, 10_000, 0.0, 1.0, False)
    assert opt.warmup.type == "polynomial"
    assert (opt.warmup.polynomial.power, opt.warmup.polynomial.warmup_steps) == (1, 10_000)


def _applied_rates(config, steps):
    """The learning rate AdamW applies at each optimizer step, built as Model Garden's
    trainer builds it (``Task.create_optimizer`` from the experiment's config)."""
    import tensorflow as tf
    from official.core import base_task

    optimizer = base_task.Task.create_optimizer(config.trainer.optimizer_config,
                                                config.runtime)
    rates = {}
    for step in steps:
        optimizer.iterations.assign(step)
        rates[step] = float(optimizer._decayed_lr(tf.float32))  # noqa: SLF001
    return rates


@pytest.mark.parametrize("train_steps, warmup_steps, warmup_used", [
    (100, 10_000, 10),  # fewer steps than the default warmup
    (2000, 10_000, 200),  # the README's local example
    (4000, 2000, 400),  # steps = 2 x warmup
    (30, 3, 3),  # the demo
    (1_000_000, 10_000, 10_000),  # the recipe
    (5, 10, 0),  # too short for a warmup: the peak at step 0
])
def test_learning_rate_rises_to_the_peak_then_decays_to_zero(train_steps, warmup_steps,
                                                             warmup_used):
    peak = 1e-3
    config = configs.experiment_config("tiny", 1000, "cc100", "x", train_steps=train_steps,
                                       warmup_steps=warmup_steps, learning_rate=peak)
    assert configs.warmup_steps_used(train_steps, warmup_steps) == warmup_used
    samples = sorted({*range(0, train_steps + 1, max(1, train_steps // 200)),
                      *range(max(0, warmup_used - 2), warmup_used + 3), train_steps - 1,
                      train_steps})
    samples = [s for s in samples if s <= train_steps]
    rates = _applied_rates(config, samples)
    assert rates[warmup_used] == pytest.approx(peak, rel=1e-6)
    assert rates[train_steps] == pytest.approx(0.0, abs=1e-12)
    during = [rates[s] for s in samples if s < train_steps]
    assert min(during) > 0, "the learning rate is 0 during the run"
    assert max(during) == pytest.approx(peak, rel=1e-6)
    rising = [rates[s] for s in samples if s <= warmup_used]
    falling = [rates[s] for s in samples if s >= warmup_used]
    assert rising == sorted(rising) and falling == sorted(falling, reverse=True)
    if warmup_used > 1:
        assert rates[0] == pytest.approx(peak / warmup_used, rel=1e-5)  # linear warmup
    half = warmup_used + (train_steps - warmup_used) // 2
    if half in rates:  # linear decay: half the peak halfway from the warmup's end
        expected = peak * (train_steps - half) / (train_steps - warmup_used)
        assert rates[half] == pytest.approx(expected, rel=1e-5)


def test_overrides_and_separate_validation_input():
    config = configs.experiment_config(
        "mini", 7027, "wikipedia", "train-*", "valid-*", train_steps=500, warmup_steps=900,
        learning_rate=3e-4, global_batch_size=16, init_checkpoint="gs://b/phase1",
        seq_length=256, max_predictions_per_seq=40, validation_steps=2)
    assert config.task.train_data.input_path == "train-*"
    assert config.task.validation_data.input_path == "valid-*"
    assert config.task.train_data.global_batch_size == 16
    assert (config.task.train_data.seq_length,
            config.task.validation_data.max_predictions_per_seq) == (256, 40)
    assert config.task.init_checkpoint == "gs://b/phase1"
    opt = config.trainer.optimizer_config
    assert opt.warmup.polynomial.warmup_steps == 50  # clipped to 10 % of train_steps
    assert opt.learning_rate.polynomial.decay_steps == 450
    assert opt.learning_rate.polynomial.offset == 50
    assert opt.learning_rate.polynomial.initial_learning_rate == 3e-4
    assert config.task.model.encoder.bert.vocab_size == 7027


@pytest.mark.parametrize("kwargs,match", [
    ({"data": "c4"}, "unknown data 'c4'; valid: cc100, wikipedia"),
    ({"size": "xl"}, "unknown model size 'xl'"),
    ({"seq_length": 1024}, "seq length 1024 must be in 3..512"),
    ({"max_predictions_per_seq": 200}, "max predictions per seq 200 must be in 1..128"),
    ({"train_steps": 0}, "train steps 0 must be positive"),
])
def test_bad_arguments(kwargs, match):
    args = {"size": "tiny", "vocab_size": 100, "data": "cc100", "train_input": "x", **kwargs}
    with pytest.raises(ValueError, match=match):
        configs.experiment_config(**args)


def test_runtime_strategy_is_left_to_the_caller():
    from official.core import exp_factory

    config = configs.experiment_config("tiny", 100, "cc100", "x")
    default = exp_factory.get_exp_config("bert/pretraining")
    assert config.runtime.as_dict() == default.runtime.as_dict()


def _flags(experiment, config_file):
    return argparse.Namespace(experiment=experiment, config_file=[str(config_file)],
                              params_override=None, tpu=None, tf_data_service=None)


def test_yaml_round_trips_through_the_model_garden_parser(tmp_path):
    from official.core import exp_factory, train_utils
    from official.modeling import hyperparams

    config = configs.experiment_config("large", 7027, "wikipedia", "gs://b/w-*.tfrecord.gz",
                                       init_checkpoint="gs://b/phase1", learning_rate=2e-5)
    path = tmp_path / "experiment.yaml"
    path.write_text(configs.to_yaml(config))
    loaded = hyperparams.override_params_dict(exp_factory.get_exp_config("bert/pretraining"),
                                              str(path), is_strict=True)
    assert loaded.as_dict() == config.as_dict()
    parsed = train_utils.parse_configuration(_flags("bert/pretraining", path),
                                             print_return=False)
    assert parsed.as_dict() == config.as_dict()
    assert parsed.trainer.optimizer_config.learning_rate.polynomial.initial_learning_rate == 2e-5


def test_registered_experiments():
    from official.core import exp_factory

    configs.register_experiments()
    configs.register_experiments()  # idempotent
    assert len(configs.experiment_names()) == 8
    for name in configs.experiment_names():
        size, subword, data = name.removeprefix("bertjp/").split("_")
        config = exp_factory.get_exp_config(name)
        bert = config.task.model.encoder.bert
        assert bert.vocab_size == {"wordpiece": 32768, "character": 7027}[subword]
        assert bert.num_layers == {"base": 12, "large": 24}[size]
        assert config.task.train_data.seq_length == configs.DATA[data].seq_length
        assert config.task.train_data.input_path == ""
        expected = configs.experiment_config(size, bert.vocab_size, data, "")
        assert config.as_dict() == expected.as_dict()


def test_registered_experiment_takes_a_data_override(tmp_path):
    from official.core import train_utils

    configs.register_experiments()
    path = tmp_path / "data.yaml"
    path.write_text("task:\n  train_data:\n    input_path: gs://b/cc-*.tfrecord.gz\n")
    parsed = train_utils.parse_configuration(
        _flags("bertjp/base_character_cc100", path), print_return=False)
    assert parsed.task.train_data.input_path == "gs://b/cc-*.tfrecord.gz"
    assert parsed.task.model.encoder.bert.vocab_size == 7027


def test_tiny_config_builds_a_pretrainer_of_that_shape():
    from official.core import task_factory

    config = configs.experiment_config("tiny", 7027, "cc100", "x")
    model = task_factory.get_task(config.task).build_model()
    encoder = model.encoder_network
    assert encoder.get_embedding_table().shape == (7027, 128)
    names = {v.name for v in model.trainable_variables}
    assert any("transformer/layer_1/" in n for n in names)
    assert not any("transformer/layer_2/" in n for n in names)
    [head] = model.classification_heads
    assert head.name == "next_sentence"
