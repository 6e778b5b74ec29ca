"""``bertjp convert`` on real Model Garden checkpoints, checked against the TF model.

A tiny ``bert/pretraining`` model (L2_H128, the released character vocabulary) is
trained for one step by Model Garden's own ``Trainer`` (so the optimizer has slots),
its weights are then perturbed with random normals (a mapping mistake cannot hide
behind zero biases or unit LayerNorms), and the trainer's ``CheckpointManager`` writes
``ckpt-N`` with ``params.yaml`` beside it, as ``official.nlp.train`` does. The converted
PyTorch model must give the TF model's MLM and NSP logits.
"""

import json
import os
import shutil

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.conftest import REFERENCE  # noqa: E402
from training import convert  # noqa: E402
from training.convert import writer as convert_writer  # noqa: E402

CHAR_VOCAB = REFERENCE / "vocab" / "character_unidic_lite"
WORDPIECE_VOCAB = REFERENCE / "vocab" / "wordpiece_unidic_lite"
SEQ = 32
TOLERANCE = 1e-4


def _config(train_input="dummy"):
    from training import configs

    return configs.experiment_config(
        "tiny", configs.vocab_size_of(str(CHAR_VOCAB)), "cc100", train_input=train_input,
        train_steps=2, warmup_steps=1, global_batch_size=2, seq_length=SEQ,
        max_predictions_per_seq=4, checkpoint_interval=1, steps_per_loop=1)


def _perturb(model, seed=0):
    """Adds N(0, 0.05) to every variable (embeddings, kernels, biases, LayerNorms)."""
    rng = np.random.default_rng(seed)
    for variable in model.variables:
        noise = rng.normal(0.0, 0.05, variable.shape.as_list()).astype(np.float32)
        variable.assign(variable.numpy() + noise)


def _train_and_save(model_dir):
    """One Model Garden training step, perturbed weights, then the trainer's checkpoint."""
    import tensorflow as tf
    from official.core import base_trainer, task_factory, train_utils

    config = _config()
    task = task_factory.get_task(config.task, logging_dir=str(model_dir))
    model = task.build_model()
    optimizer = task.create_optimizer(config.trainer.optimizer_config, config.runtime)
    trainer = base_trainer.Trainer(config, task, model=model, optimizer=optimizer,
                                   train=True, evaluate=False)
    trainer.train(tf.constant(1, dtype=tf.int32))
    _perturb(model)
    manager = tf.train.CheckpointManager(trainer.checkpoint, str(model_dir), max_to_keep=2,
                                         step_counter=trainer.global_step)
    path = manager.save(checkpoint_number=trainer.global_step)
    train_utils.serialize_config(config, str(model_dir))
    return model, path


def _inputs():
    rng = np.random.default_rng(1)
    ids = rng.integers(5, 7027, size=(2, SEQ)).astype(np.int32)
    ids[:, 0] = 2  # [CLS]
    ids[:, 12] = 3  # [SEP]
    ids[:, -1] = 3
    types = np.zeros_like(ids)
    types[:, 13:] = 1
    mask = np.ones_like(ids)
    mask[1, 20:] = 0  # the second example is padded
    ids[1, 20:] = 0
    types[1, 20:] = 0
    return ids, types, mask


def _tf_logits(model, ids, types, mask):
    import tensorflow as tf

    positions = np.tile(np.arange(SEQ, dtype=np.int32), (ids.shape[0], 1))
    out = model({"input_word_ids": tf.constant(ids), "input_type_ids": tf.constant(types),
                 "input_mask": tf.constant(mask), "masked_lm_positions": tf.constant(positions)},
                training=False)
    return out["mlm_logits"].numpy(), out["next_sentence"].numpy()


def _hf_logits(model_dir, ids, types, mask):
    import torch
    from transformers import BertForPreTraining

    model = BertForPreTraining.from_pretrained(str(model_dir)).eval()
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(ids).long(),
                    token_type_ids=torch.from_numpy(types).long(),
                    attention_mask=torch.from_numpy(mask).long())
    return out.prediction_logits.numpy(), out.seq_relationship_logits.numpy()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("convert") / "model"
    model, path = _train_and_save(model_dir)
    return model, model_dir, path


@pytest.fixture(scope="module")
def converted(trained, tmp_path_factory):
    model, model_dir, _ = trained
    out = tmp_path_factory.mktemp("hf") / "bert"
    lines = []
    summary = convert.convert(str(model_dir), str(CHAR_VOCAB), str(out), log=lines.append)
    return out, summary, lines


def _max_diffs(tf_model, hf_dir):
    ids, types, mask = _inputs()
    tf_mlm, tf_nsp = _tf_logits(tf_model, ids, types, mask)
    hf_mlm, hf_nsp = _hf_logits(hf_dir, ids, types, mask)
    assert tf_mlm.shape == hf_mlm.shape == (2, SEQ, 7027)
    assert tf_nsp.shape == hf_nsp.shape == (2, 2)
    return float(np.abs(tf_mlm - hf_mlm).max()), float(np.abs(tf_nsp - hf_nsp).max()), tf_mlm


def test_logits_match_model_garden(trained, converted):
    model, _, _ = trained
    out, _, _ = converted
    mlm, nsp, tf_mlm = _max_diffs(model, out)
    print(f"max |diff| with gelu_pytorch_tanh: MLM {mlm:.2e}, NSP {nsp:.2e}")
    assert np.abs(tf_mlm).max() > 1.0  # the perturbed model gives non-trivial logits
    assert mlm <= TOLERANCE
    assert nsp <= TOLERANCE


def test_the_released_configs_exact_gelu_stays_close(trained, tmp_path):
    """``--hidden-act gelu`` (the released configs) differs only by the gelu approximation."""
    model, model_dir, _ = trained
    out = tmp_path / "bert"
    assert convert.main(["--checkpoint", str(model_dir), "--vocab", str(CHAR_VOCAB),
                         "--output", str(out), "--hidden-act", "gelu"]) == 0
    assert json.loads((out / "config.json").read_text())["hidden_act"] == "gelu"
    mlm, nsp, _ = _max_diffs(model, out)
    print(f"max |diff| with gelu: MLM {mlm:.2e}, NSP {nsp:.2e}")
    assert mlm < 0.05 and nsp < 0.05


def test_summary_and_progress(trained, converted):
    from transformers import BertForPreTraining

    _, _, path = trained
    out, summary, lines = converted
    assert summary["checkpoint"] == path
    assert summary["unused"] == []  # everything else is optimizer state or counters
    assert summary["skipped"] == ["encoder/layer_with_weights-6/bias",
                                  "encoder/layer_with_weights-6/kernel"]
    assert summary["subword"] == "character"
    reloaded = BertForPreTraining.from_pretrained(str(out))
    assert summary["parameters"] == sum(p.numel() for p in reloaded.parameters())
    assert any(line.startswith(f"wrote BertForPreTraining ({summary['parameters']:,}")
               for line in lines)
    assert any("from " in line and "params.yaml" in line for line in lines)


def test_output_dir_is_a_transformers_model(converted):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, BertJapaneseTokenizer

    out, _, _ = converted
    config = json.loads((out / "config.json").read_text())
    expected = {"architectures": ["BertForPreTraining"], "model_type": "bert",
                "layer_norm_eps": 1e-12, "pad_token_id": 0, "hidden_size": 128,
                "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512,
                "vocab_size": 7027, "max_position_embeddings": 512, "type_vocab_size": 2,
                "hidden_act": "gelu_pytorch_tanh"}
    assert {k: config[k] for k in expected} == expected
    assert (out / "model.safetensors").is_file()
    assert (out / "vocab.txt").read_bytes() == (CHAR_VOCAB / "vocab.txt").read_bytes()
    tok_config = json.loads((out / "tokenizer_config.json").read_text())
    assert tok_config["tokenizer_class"] == "BertJapaneseTokenizer"
    assert tok_config["subword_tokenizer_type"] == "character"
    assert tok_config["mecab_kwargs"] == {"mecab_dic": "unidic_lite"}
    assert tok_config["do_lower_case"] is False
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert isinstance(tokenizer, BertJapaneseTokenizer)
    assert tokenizer.tokenize("東京都に住む") == ["東", "京", "都", "に", "住", "む"]
    assert AutoModelForMaskedLM.from_pretrained(str(out)).config.vocab_size == 7027


def test_fill_mask_pipeline(converted):
    import transformers

    out, _, _ = converted
    fill = transformers.pipeline("fill-mask", model=str(out), tokenizer=str(out))
    predictions = fill("東北大学で[MASK]の研究をしています。")
    assert len(predictions) == 5
    assert all(isinstance(p["token_str"], str) and p["token_str"] for p in predictions)
    scores = [p["score"] for p in predictions]
    assert scores == sorted(scores, reverse=True)


def test_checkpoint_prefix_without_params_needs_size(trained, converted, tmp_path):
    model, model_dir, path = trained
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in os.listdir(model_dir):
        if name.startswith(os.path.basename(path) + "."):
            shutil.copy(model_dir / name, bare / name)
    prefix = str(bare / os.path.basename(path))
    with pytest.raises(ValueError, match="no params.yaml beside .*pass --size"):
        convert.convert(prefix, str(CHAR_VOCAB), str(tmp_path / "a"), log=lambda _: None)
    convert.convert(prefix + ".index", str(CHAR_VOCAB), str(tmp_path / "b"), size="tiny",
                    hidden_act="gelu_pytorch_tanh", log=lambda _: None)
    first, second = (open(d / "model.safetensors", "rb").read()
                     for d in (converted[0], tmp_path / "b"))
    assert first == second


def test_wrong_size_is_a_clear_error(trained, tmp_path):
    _, model_dir, _ = trained
    args = ["--checkpoint", str(model_dir), "--vocab", str(CHAR_VOCAB)]
    with pytest.raises(ValueError, match=r"^checkpoint variable masked_lm/embedding_table "
                       r"has shape \[7027, 128\], the model expects \[7027, 256\]"):
        convert.main([*args, "--output", str(tmp_path / "a"), "--size", "L2_H256"])
    with pytest.raises(ValueError, match="checkpoint has 2 transformer layers, the model "
                       r"\(--size L4_H128\) expects 4"):
        convert.main([*args, "--output", str(tmp_path / "b"), "--size", "L4_H128"])


def test_wrong_vocab_is_a_clear_error(trained, tmp_path):
    _, model_dir, _ = trained
    with pytest.raises(ValueError, match="vocabulary has 32768 tokens, the model .* has 7027"):
        convert.main(["--checkpoint", str(model_dir), "--vocab", str(WORDPIECE_VOCAB),
                      "--output", str(tmp_path / "a")])
    with pytest.raises(ValueError, match=r"checkpoint variable masked_lm/embedding_table has "
                       r"shape \[7027, 128\], the model expects \[32768, 128\]"):
        convert.main(["--checkpoint", str(model_dir), "--vocab", str(WORDPIECE_VOCAB),
                      "--output", str(tmp_path / "b"), "--size", "tiny"])


def test_model_only_checkpoint(trained, converted, tmp_path):
    """``tf.train.Checkpoint(model=model)`` (no trainer items) converts the same."""
    import tensorflow as tf

    model, _, _ = trained
    prefix = tf.train.Checkpoint(model=model).save(str(tmp_path / "export" / "ckpt"))
    out = tmp_path / "bert"
    convert.convert(prefix, str(CHAR_VOCAB), str(out), size="tiny", hidden_act="gelu_pytorch_tanh",
                    log=lambda _: None)
    mlm, nsp, _ = _max_diffs(model, out)
    assert mlm <= TOLERANCE and nsp <= TOLERANCE


def test_user_errors(trained, tmp_path):
    _, model_dir, _ = trained
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        convert.convert(str(tmp_path), str(CHAR_VOCAB), str(tmp_path / "o1"))
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        convert.convert(str(tmp_path / "ckpt-7"), str(CHAR_VOCAB), str(tmp_path / "o2"))
    with pytest.raises(FileNotFoundError, match="no vocab.txt in"):
        convert.convert(str(model_dir), str(tmp_path), str(tmp_path / "o3"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(FileExistsError, match="not empty .*--overwrite"):
        convert.convert(str(model_dir), str(CHAR_VOCAB), str(busy))


@pytest.mark.parametrize("tokens, config, expected", [
    (["[PAD]", "東", "##京"], None, "wordpiece"),
    (["[PAD]", "東", "京"], None, "character"),
    (["[PAD]", "東", "##京"], {"subword_tokenizer_type": "character"}, "character"),
])
def test_subword_type(tokens, config, expected):
    assert convert.subword_type(tokens, config) == expected


def test_vocab_dir_tokenizer_config_is_followed(tmp_path):
    from bertjp.vocab_files import write_tokenizer_dir

    write_tokenizer_dir(str(tmp_path), ["[PAD]", "[UNK]", "東", "##京"], "character", "ipadic")
    data, tokens, config = convert.read_vocab_dir(str(tmp_path))
    assert tokens == ["[PAD]", "[UNK]", "東", "##京"]
    assert convert.subword_type(tokens, config) == "character"
    written = json.loads(convert_writer._tokenizer_config(tokens, "character", config, 512))
    assert written["mecab_kwargs"] == {"mecab_dic": "ipadic"}


def test_bertjp_command_reports_the_error_in_one_line(trained, tmp_path, capsys):
    from bertjp_cli import main as bertjp

    _, model_dir, _ = trained
    code = bertjp(["convert", "--checkpoint", str(model_dir), "--vocab", str(CHAR_VOCAB),
                   "--output", str(tmp_path / "a"), "--size", "L2_H256"])
    assert code == 1
    assert ("bertjp convert: error: checkpoint variable masked_lm/embedding_table has shape "
            "[7027, 128], the model expects [7027, 256]") in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # nothing is written before the weights fit


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_every_output_file_follows_the_umask(trained, tmp_path, umask):
    """model.safetensors gets the mode a plain open() file gets, as config.json does."""
    _, model_dir, _ = trained
    old = os.umask(umask)
    try:
        convert.convert(str(model_dir), str(CHAR_VOCAB), str(tmp_path / "out"),
                        log=lambda _: None)
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    plain = os.stat(tmp_path / "plain").st_mode & 0o777
    assert plain == 0o666 & ~umask
    modes = {p.name: os.stat(p).st_mode & 0o777 for p in (tmp_path / "out").iterdir()}
    assert set(modes) >= {"model.safetensors", "config.json", "vocab.txt",
                          "tokenizer_config.json"}
    assert modes == {name: plain for name in modes}


def _params(**bert):
    encoder = {"type": "bert", "bert": {"vocab_size": 7027, "hidden_size": 128,
                                        "num_layers": 2, "num_attention_heads": 2,
                                        "intermediate_size": 512, **bert}}
    return {"task": {"model": {"encoder": encoder, "mlm_activation": "gelu",
                               "cls_heads": [{"name": "next_sentence"}]}}}


def test_architecture_from_params():
    arch = convert.architecture_from_params(_params())
    assert (arch.num_layers, arch.hidden_size, arch.num_heads, arch.intermediate_size,
            arch.vocab_size, arch.max_position_embeddings) == (2, 128, 2, 512, 7027, 512)
    with pytest.raises(ValueError, match="norm_first .*; embedding_size 64 != hidden_size"):
        convert.architecture_from_params(_params(norm_first=True, embedding_size=64))
    bad_heads = _params()
    bad_heads["task"]["model"]["cls_heads"] = []
    with pytest.raises(ValueError, match=r"classification heads \[\] "):
        convert.architecture_from_params(bad_heads)


def test_help():
    with pytest.raises(SystemExit) as exit_:
        convert.main(["--help"])
    assert exit_.value.code == 0
