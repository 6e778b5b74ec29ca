"""``bertjp import``: transformers -> Model Garden, checked both ways.

Tiny transformers models (random init with a fixed seed, then every parameter moved by
seeded noise so that a mapping mistake cannot hide behind zero biases or unit
LayerNorms) are imported; ``bertjp convert`` must give every tensor back bit for bit,
and Model Garden's own model, restored from the imported checkpoint, must give
transformers' MLM and NSP logits on a real Japanese sentence pair.
"""

import json
import os
import shutil
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.conftest import REFERENCE  # noqa: E402
from training import convert, importer  # noqa: E402

CHAR_VOCAB = REFERENCE / "vocab" / "character_unidic_lite"
FIRST = "東北大学で自然言語処理の研究をしています。"
SECOND = "仙台は杜の都と呼ばれる。"
TOLERANCE = 1e-5


def _tokens(limit=None):
    tokens = (CHAR_VOCAB / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return tokens[:limit] if limit else tokens


def _bert_config(vocab_size, layers=2, hidden=128, heads=2, act="gelu_pytorch_tanh",
                 intermediate=None, positions=512, types=2):
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, intermediate_size=intermediate or 4 * hidden,
                      hidden_act=act, max_position_embeddings=positions, type_vocab_size=types,
                      layer_norm_eps=1e-12, pad_token_id=0)


def _make_model(directory, cls_name="BertForPreTraining", seed=0, tokens=None, **shape):
    """A seeded random transformers model with its tokenizer files, as convert writes them."""
    import torch
    import transformers

    from bertjp.vocab_files import tokenizer_files

    tokens = tokens or _tokens()
    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(_bert_config(len(tokens), **shape)).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    model.save_pretrained(str(directory))
    for name, data in tokenizer_files(tokens, "character", "unidic-lite", 512).items():
        (directory / name).write_bytes(data)
    return directory


def _tensors(directory):
    from safetensors.numpy import load_file

    return load_file(str(directory / "model.safetensors"))


def _pair_inputs(tokens):
    from bertjp.tokenization import JapaneseTokenizer

    tokenizer = JapaneseTokenizer(tokens, subword="character")
    cls, sep = tokens.index("[CLS]"), tokens.index("[SEP]")
    a, b = tokenizer.encode(FIRST)[1], tokenizer.encode(SECOND)[1]
    rows = [[cls, *a, sep, *b, sep], [cls, *b, sep]]  # the second is padded
    width = len(rows[0])
    ids = np.zeros((2, width), np.int32)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    types[0, len(a) + 2:width] = 1
    assert tokens.index("[UNK]") not in rows[0]
    return ids, types, mask


def _hf_logits(directory, ids, types, mask, cls_name="BertForPreTraining"):
    import torch
    import transformers

    model = getattr(transformers, cls_name).from_pretrained(str(directory)).eval()
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(ids).long(),
                    token_type_ids=torch.from_numpy(types).long(),
                    attention_mask=torch.from_numpy(mask).long())
    if cls_name == "BertForMaskedLM":
        return out.logits.numpy(), None
    return out.prediction_logits.numpy(), out.seq_relationship_logits.numpy()


def _garden_model(result, init_checkpoint=""):
    """Model Garden's pretrainer built from the imported params.yaml."""
    import yaml
    from official.core import exp_factory, task_factory
    from official.nlp.configs import pretraining_experiments  # noqa: F401

    config = exp_factory.get_exp_config("bert/pretraining")
    with open(result.params_yaml, encoding="utf-8") as f:
        config.override(yaml.safe_load(f), is_strict=True)
    config.task.init_checkpoint = init_checkpoint
    task = task_factory.get_task(config.task)
    return task, task.build_model()


def _garden_logits(model, ids, types, mask):
    import tensorflow as tf

    positions = np.tile(np.arange(ids.shape[1], dtype=np.int32), (ids.shape[0], 1))
    out = model({"input_word_ids": tf.constant(ids), "input_type_ids": tf.constant(types),
                 "input_mask": tf.constant(mask), "masked_lm_positions": tf.constant(positions)},
                training=False)
    return out["mlm_logits"].numpy(), out["next_sentence"].numpy()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return _make_model(tmp_path_factory.mktemp("hf") / "bert")


@pytest.fixture(scope="module")
def imported(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("imported") / "garden"
    lines = []
    result = importer.import_model(str(source), str(out), log=lines.append)
    return out, result, lines


def test_result_and_files(source, imported):
    out, result, lines = imported
    assert result.checkpoint == str(out / "ckpt-0")
    assert result.params_yaml == str(out / "params.yaml")
    assert result.vocab_dir == str(out)
    arch = result.architecture
    assert (arch.num_layers, arch.hidden_size, arch.num_heads, arch.intermediate_size,
            arch.vocab_size, arch.max_position_embeddings, arch.type_vocab_size) == (
        2, 128, 2, 512, 7027, 512, 2)
    assert (result.size, result.vocab_size, result.max_position_embeddings) == ("tiny", 7027, 512)
    assert (result.nsp_head, result.hidden_act, result.gelu_difference) == (
        "imported", "gelu_pytorch_tanh", None)
    assert sorted(os.listdir(out)) == ["checkpoint", "ckpt-0.data-00000-of-00001",
                                       "ckpt-0.index", "params.yaml", "tokenizer_config.json",
                                       "vocab.txt"]
    for name in ("vocab.txt", "tokenizer_config.json"):
        assert (out / name).read_bytes() == (source / name).read_bytes()
    assert convert.find_checkpoint(str(out)) == result.checkpoint
    assert not [n for n in os.listdir(out.parent) if n.startswith(".import-")]
    assert any("NSP head imported" in line for line in lines)
    assert result.warnings == ()


def test_round_trip_is_bit_for_bit(source, imported, tmp_path):
    out, _, _ = imported
    back = tmp_path / "back"
    summary = convert.convert(str(out), str(out), str(back), log=lambda _: None)
    assert summary["unused"] == []
    before, after = _tensors(source), _tensors(back)
    assert sorted(before) == sorted(after)
    for name, value in before.items():
        assert value.dtype == after[name].dtype and value.shape == after[name].shape, name
        assert value.tobytes() == after[name].tobytes(), name
    assert json.loads((back / "config.json").read_text())["hidden_act"] == "gelu_pytorch_tanh"


def test_model_garden_logits_match_transformers(source, imported):
    import tensorflow as tf

    _, result, _ = imported
    _, model = _garden_model(result)
    status = tf.train.Checkpoint(model=model, **model.checkpoint_items).read(result.checkpoint)
    status.assert_existing_objects_matched()
    ids, types, mask = _pair_inputs(_tokens())
    tf_mlm, tf_nsp = _garden_logits(model, ids, types, mask)
    hf_mlm, hf_nsp = _hf_logits(source, ids, types, mask)
    mlm, nsp = float(np.abs(tf_mlm - hf_mlm).max()), float(np.abs(tf_nsp - hf_nsp).max())
    print(f"Model Garden vs transformers: MLM {mlm:.2e}, NSP {nsp:.2e}")
    assert np.abs(hf_mlm).max() > 1.0
    assert mlm <= TOLERANCE and nsp <= TOLERANCE


def test_task_init_checkpoint_reads_it(source, imported):
    """Model Garden's ``task.initialize`` (``init_checkpoint``) restores encoder and MLM."""
    _, result, _ = imported
    task, model = _garden_model(result, init_checkpoint=result.output)
    task.initialize(model)  # asserts that every object it knows is in the checkpoint
    ids, types, mask = _pair_inputs(_tokens())
    tf_mlm, _ = _garden_logits(model, ids, types, mask)
    hf_mlm, _ = _hf_logits(source, ids, types, mask)
    assert float(np.abs(tf_mlm - hf_mlm).max()) <= TOLERANCE


def test_masked_lm_model_gets_a_fresh_seeded_nsp_head(tmp_path):
    import tensorflow as tf

    source = _make_model(tmp_path / "mlm", "BertForMaskedLM", seed=5)
    results, lines = [], []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        results.append(importer.import_model(str(source), str(tmp_path / name), seed=seed,
                                             log=lines.append))
    assert [r.nsp_head for r in results] == ["fresh"] * 3
    assert any("no NSP head" in line and "seeded with 7" in line for line in lines)
    assert any("no NSP head" in w for w in results[0].warnings)
    readers = [tf.train.load_checkpoint(r.checkpoint) for r in results]
    head = ["next_sentence..pooler_dense/kernel", "model/classification_heads/0/out_proj/kernel",
            "encoder/layer_with_weights-6/kernel"]
    for name in head:
        a, b, c = (r.get_tensor(name + "/.ATTRIBUTES/VARIABLE_VALUE") for r in readers)
        assert np.array_equal(a, b) and not np.array_equal(a, c), name
        assert 0.015 < a.std() < 0.025 and np.abs(a).max() <= 0.04, name
    # Everything the model has comes back bit for bit; the NSP head is the fresh one.
    back = tmp_path / "back"
    convert.convert(results[0].output, results[0].output, str(back), log=lambda _: None)
    before, after = _tensors(source), _tensors(back)
    assert set(before) < set(after)
    for name, value in before.items():
        assert value.tobytes() == after[name].tobytes(), name
    pooler = readers[0].get_tensor("next_sentence..pooler_dense/kernel/.ATTRIBUTES/"
                                   "VARIABLE_VALUE")
    assert np.array_equal(after["bert.pooler.dense.weight"], pooler.T)


def test_exact_gelu_is_imported_with_the_measured_difference(source, tmp_path):
    model = tmp_path / "exact"
    shutil.copytree(source, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(config | {"hidden_act": "gelu"}))
    lines = []
    result = importer.import_model(str(model), str(tmp_path / "out"), log=lines.append)
    print(f"exact gelu vs tanh gelu, MLM logits: {result.gelu_difference:.2e}")
    assert result.hidden_act == "gelu"
    assert 1e-6 < result.gelu_difference < 0.05
    assert any(line.startswith("warning: config.json says hidden_act gelu")
               and f"{result.gelu_difference:.2e}" in line for line in lines)
    assert result.warnings and "gelu" in result.warnings[0]


def _broken(source, tmp_path, edit):
    from safetensors.numpy import save_file

    model = tmp_path / "broken"
    shutil.copytree(source, model)
    tensors = _tensors(source)
    edit(tensors)
    save_file(tensors, str(model / "model.safetensors"))
    return model


def test_wrong_shape_is_an_error_and_nothing_is_written(source, tmp_path):
    def edit(tensors):
        tensors["bert.encoder.layer.1.intermediate.dense.weight"] = np.zeros((256, 128),
                                                                             np.float32)

    model = _broken(source, tmp_path, edit)
    with pytest.raises(ValueError, match=r"tensor bert.encoder.layer.1.intermediate.dense."
                       r"weight has shape \[256, 128\], the model .*config.json\) expects "
                       r"\[512, 128\]"):
        importer.import_model(str(model), str(tmp_path / "out"), log=lambda _: None)
    assert sorted(os.listdir(tmp_path)) == ["broken"]


def test_missing_tensor_is_an_error_and_nothing_is_written(source, tmp_path):
    model = _broken(source, tmp_path,
                    lambda t: t.pop("bert.encoder.layer.0.attention.self.key.bias"))
    with pytest.raises(ValueError, match="has no tensor bert.encoder.layer.0.attention.self."
                       "key.bias"):
        importer.import_model(str(model), str(tmp_path / "out"), log=lambda _: None)
    assert sorted(os.listdir(tmp_path)) == ["broken"]


def test_extra_or_partial_tensors_are_errors(source, tmp_path):
    model = _broken(source, tmp_path,
                    lambda t: t.update({"bert.encoder.layer.2.output.dense.bias":
                                        np.zeros(128, np.float32)}))
    with pytest.raises(ValueError, match="1 tensors map to no Model Garden variable: "
                       "bert.encoder.layer.2.output.dense.bias"):
        importer.import_model(str(model), str(tmp_path / "a"), log=lambda _: None)
    shutil.rmtree(model)
    model = _broken(source, tmp_path, lambda t: t.pop("cls.seq_relationship.bias"))
    with pytest.raises(ValueError, match="part of the NSP head: no cls.seq_relationship.bias"):
        importer.import_model(str(model), str(tmp_path / "b"), log=lambda _: None)
    assert sorted(os.listdir(tmp_path)) == ["broken"]


def test_config_and_vocab_errors(source, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(source, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(config | {"hidden_act": "relu"}))
    with pytest.raises(ValueError, match="hidden_act 'relu'"):
        importer.import_model(str(model), str(tmp_path / "o"), log=lambda _: None)
    (model / "config.json").write_text(json.dumps(config))
    (model / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    with pytest.raises(ValueError, match="has 2 tokens, .* says vocab_size 7027"):
        importer.import_model(str(model), str(tmp_path / "o"), log=lambda _: None)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        importer.import_model(str(tmp_path), str(tmp_path / "o"), log=lambda _: None)
    assert not (tmp_path / "o").exists()


def test_existing_output_needs_overwrite(source, imported, tmp_path, capsys):
    from bertjp_cli import main as bertjp

    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("x")
    code = bertjp(["import", "--model", str(source), "--output", str(out)])
    assert code == 1
    assert "bertjp import: error: --output" in capsys.readouterr().err
    assert bertjp(["import", "--model", str(source), "--output", str(out), "--overwrite",
                   "--seed", "3"]) == 0
    assert sorted(os.listdir(out)) == sorted(os.listdir(imported[0]))
    assert not [n for n in os.listdir(tmp_path) if n != "out"]


def test_base_size_round_trip(tmp_path):
    """BERT-base's shape (12 layers, hidden 768, 12 heads) with a 1,000-token vocabulary."""
    start = time.time()
    source = _make_model(tmp_path / "base", tokens=_tokens(1000), layers=12, hidden=768,
                         heads=12)
    result = importer.import_model(str(source), str(tmp_path / "garden"), log=lambda _: None)
    assert result.size == "base" and result.variables == 12 * 16 + 16
    back = tmp_path / "back"
    convert.convert(result.output, result.output, str(back), log=lambda _: None)
    before, after = _tensors(source), _tensors(back)
    assert sorted(before) == sorted(after)
    for name, value in before.items():
        assert value.tobytes() == after[name].tobytes(), name
    print(f"base-size round trip: {time.time() - start:.1f} s")


def test_help():
    with pytest.raises(SystemExit) as exit_:
        importer.main(["--help"])
    assert exit_.value.code == 0


def _checkpoint_values(prefix):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.endswith("/.ATTRIBUTES/VARIABLE_VALUE")}


def test_pytorch_model_bin_with_gamma_beta_names(source, imported, tmp_path):
    """An older model: ``pytorch_model.bin``, LayerNorm ``gamma``/``beta``, a saved
    ``position_ids`` buffer and the tied decoder weight written out."""
    import torch

    model = tmp_path / "old"
    shutil.copytree(source, model)
    (model / "model.safetensors").unlink()
    tensors = _tensors(source)
    state = {name.replace("LayerNorm.weight", "LayerNorm.gamma")
             .replace("LayerNorm.bias", "LayerNorm.beta"): torch.from_numpy(value)
             for name, value in tensors.items()}
    state["bert.embeddings.position_ids"] = torch.arange(512)[None]
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    torch.save(state, model / "pytorch_model.bin")
    result = importer.import_model(str(model), str(tmp_path / "out"), log=lambda _: None)
    first, second = (_checkpoint_values(p) for p in (imported[1].checkpoint, result.checkpoint))
    assert sorted(first) == sorted(second)
    for name, value in first.items():
        assert value.tobytes() == second[name].tobytes(), name


def test_untied_decoder_is_an_error(source, tmp_path):
    def edit(tensors):
        words = tensors["bert.embeddings.word_embeddings.weight"]
        tensors["cls.predictions.decoder.weight"] = words + np.float32(1.0)

    model = _broken(source, tmp_path, edit)
    with pytest.raises(ValueError, match="cls.predictions.decoder.weight differs from "
                       "bert.embeddings.word_embeddings.weight, which Model Garden ties"):
        importer.import_model(str(model), str(tmp_path / "out"), log=lambda _: None)
    assert sorted(os.listdir(tmp_path)) == ["broken"]


def test_a_shape_of_no_named_size(tmp_path):
    """4 heads of 32, intermediate 384, 64 positions, 3 token types: params.yaml says so."""
    import yaml

    source = _make_model(tmp_path / "odd", heads=4, intermediate=384, positions=64, types=3)
    result = importer.import_model(str(source), str(tmp_path / "garden"), log=lambda _: None)
    assert result.size is None and result.max_position_embeddings == 64
    with open(result.params_yaml, encoding="utf-8") as f:
        params = yaml.safe_load(f)
    bert = params["task"]["model"]["encoder"]["bert"]
    assert (bert["num_attention_heads"], bert["intermediate_size"], bert["max_position_embeddings"],
            bert["type_vocab_size"]) == (4, 384, 64, 3)
    assert params["task"]["train_data"]["seq_length"] == 64
    back = tmp_path / "back"
    convert.convert(result.output, result.output, str(back), log=lambda _: None)
    before, after = _tensors(source), _tensors(back)
    assert sorted(before) == sorted(after)
    for name, value in before.items():
        assert value.tobytes() == after[name].tobytes(), name


def test_other_layer_norm_epsilon_is_a_warning(source, tmp_path):
    model = tmp_path / "eps"
    shutil.copytree(source, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(config | {"layer_norm_eps": 1e-5}))
    result = importer.import_model(str(model), str(tmp_path / "out"), log=lambda _: None)
    assert result.warnings == ("warning: config.json says layer_norm_eps 1e-05; Model Garden's "
                               "BertEncoder uses 1e-12",)
