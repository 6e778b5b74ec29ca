"""Fine-tuning on JGLUE: inputs, JSQuAD windows and post-processing, the training loop.

The model is a tiny ``BertForPreTraining`` (2 layers, hidden 64) built with transformers
and saved with the released v3 WordPiece vocabulary and a ``BertJapaneseTokenizer``
``tokenizer_config.json``, as ``bertjp convert`` writes a directory. The JGLUE data are
the four samples in ``tests/fixtures/jglue`` laid out as JGLUE's ``datasets/`` folder
(each sample is both the train and the dev file).
"""

import json
import os
import pathlib
import shutil

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402

from bertjp.vocab_files import read_vocab, write_tokenizer_dir  # noqa: E402
from evaluation import data as jglue_data  # noqa: E402
from evaluation import features as feats  # noqa: E402
from evaluation import finetune as ft  # noqa: E402
from evaluation.tasks import get_task  # noqa: E402
from tests.conftest import FIXTURES, REFERENCE  # noqa: E402

JGLUE = FIXTURES / "jglue"
WORDPIECE = REFERENCE / "vocab" / "wordpiece_unidic_lite"
SAMPLES = {
    "jsts": "jsts-train-v1.3.head30.json",
    "jnli": "jnli-test-v1.3.head30.json",
    "jcommonsenseqa": "jcommonsenseqa-train-v1.3.head30.json",
    "jsquad": "jsquad-test-v1.3.first2articles.json",
}


def make_tiny_model(directory, hidden=64, layers=2, seed=0):
    """A random tiny BERT directory with the released v3 vocabulary."""
    import torch
    from transformers import BertConfig, BertForPreTraining

    vocab = read_vocab(str(WORDPIECE))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden * 2,
                        max_position_embeddings=512, pad_token_id=0,
                        hidden_act="gelu_pytorch_tanh")
    BertForPreTraining(config).save_pretrained(str(directory))
    write_tokenizer_dir(str(directory), vocab, "wordpiece")
    return pathlib.Path(directory)


def make_jglue_dir(root, tasks=tuple(SAMPLES), repeat_to=None):
    """JGLUE's datasets/ layout with each sample as train and valid.

    ``repeat_to``: repeat a JSON Lines sample's lines up to that many examples."""
    root = pathlib.Path(root)
    for name in tasks:
        spec = get_task(name)
        source = JGLUE / SAMPLES[name]
        for split in ("train", "valid"):
            target = spec.path(root, split)
            target.parent.mkdir(parents=True, exist_ok=True)
            if repeat_to and name != "jsquad":
                lines = source.read_text(encoding="utf-8").splitlines()
                lines = (lines * (repeat_to // len(lines) + 1))[:repeat_to]
                target.write_text("\n".join(lines) + "\n", encoding="utf-8")
            else:
                shutil.copyfile(source, target)
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture(scope="session")
def tokenizer(tiny_model):
    return feats.load_tokenizer(str(tiny_model))


# --- inputs ------------------------------------------------------------------------------

def test_tokenizer_matches_bert_japanese_tokenizer(tiny_model, tokenizer):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(tiny_model))
    assert type(reference).__name__ == "BertJapaneseTokenizer"
    for a, b in [("山の上に顔の白い牛が2頭います。", "曇り空の山肌で、牛が２匹草を食んでいます。"),
                 ("梅雨 [SEP] 梅雨（つゆ、ばいう）は", None)]:
        ours = feats.encode_pair(tokenizer, a, b, 128)
        theirs = reference(a, b, truncation=True, max_length=128, return_token_type_ids=True)
        assert ours.input_ids == theirs["input_ids"]
        assert ours.token_type_ids == theirs["token_type_ids"]


def test_pair_truncation_is_longest_first(tiny_model, tokenizer):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(tiny_model))
    a = "電子機器で使用される最も主要な電子回路基板の事をなんと言う？" * 2
    b = "マザーボード"
    for length in (12, 20, 33):
        ours = feats.encode_pair(tokenizer, a, b, length)
        theirs = reference(a, b, truncation=True, max_length=length)
        assert ours.input_ids == theirs["input_ids"]
        assert len(ours.input_ids) == length


def _qa_example(context, answer, question="質問はなにか。"):
    start = context.index(answer)
    return {"id": "q", "question": question, "context": context,
            "answers": [{"text": answer, "answer_start": start}]}


def test_jsquad_windows_label_the_answer_and_map_back(tokenizer):
    context = "梅雨 [SEP] " + "梅雨は、北海道と小笠原諸島を除く日本で見られる。" * 6
    example = _qa_example(context, "小笠原諸島", "梅雨がないのは北海道とどこか。")
    example["answers"][0]["answer_start"] = context.rindex("小笠原諸島")  # in the last window
    features = feats.qa_features(tokenizer, [example], 48, 16, 64, training=True)
    assert len(features) > 2
    labelled = [f for f in features if f.start_position]
    assert labelled, "some window holds the answer"
    for f in features:
        assert len(f.input_ids) <= 48
        assert f.tokens.count("[SEP]") >= 2
        if f.start_position:
            assert feats.jglue_text(f.tokens[f.start_position:f.end_position + 1]) == "小笠原諸島"
        else:
            assert f.end_position == 0
    # the title's [SEP] is one token that cannot be an answer
    first = features[0]
    sep = first.tokens.index("[SEP]", first.tokens.index("[SEP]") + 1)
    assert first.char_spans[sep] is None and first.token_type_ids[sep] == 1
    # every context token is the max-context token of exactly one window
    counts = {}
    for f in features:
        for span, best in zip(f.char_spans, f.max_context, strict=True):
            if span is not None and best:
                counts[span] = counts.get(span, 0) + 1
    assert set(counts.values()) == {1}


def test_postprocess_picks_the_best_valid_span(tokenizer):
    context = ("ジェイ・キャスト [SEP] "
               "株式会社ジェイ・キャスト（英語：J-CAST, Inc.）は、日本の会社。")
    example = _qa_example(context, "J-CAST, Inc.")
    [feature] = feats.qa_features(tokenizer, [example], 128, 128, 64, training=True)
    n = len(feature.input_ids)
    s, e = feature.start_position, feature.end_position
    starts, ends = [0.0] * n, [0.0] * n
    starts[s], ends[e] = 5.0, 5.0
    starts[0], ends[0] = 9.0, 9.0  # [CLS] scores best but is not in the context
    starts[e + 1], ends[s - 1] = 7.0, 6.5  # end before start: invalid
    [answer] = feats.postprocess_qa([feature], [starts], [ends], [context])
    assert answer["span_text"] == "J-CAST, Inc."
    assert answer["text"] == "J-CAST,Inc."  # JGLUE's rule: joined tokens, spaces dropped
    assert answer["start"] == context.index("J-CAST")
    # longer than max_answer_length: the best short span wins instead
    [short] = feats.postprocess_qa([feature], [starts], [ends], [context], n_best_size=n,
                                   max_answer_length=1)
    assert short["text"] == feature.tokens[e + 1] and short["span_text"] == "）"


def test_jglue_text_is_convert_tokens_to_string_without_spaces():
    assert feats.jglue_text(["梅", "##雨", "は", "J", "-", "CAST"]) == "梅雨はJ-CAST"
    assert feats.jglue_text(["##雨", "は"]) == "##雨は"  # as JGLUE: a leading ## stays
    assert feats.jglue_text(["[UNK]", "Inc", "."]) == "[UNK]Inc."


def test_jsquad_sample_answers_round_trip(tokenizer):
    examples = jglue_data.read_jsquad(JGLUE / SAMPLES["jsquad"])
    dicts = [ft._qa_dict(e) for e in examples]
    features = feats.qa_features(tokenizer, dicts, 384, 128, 64, training=True)
    exact = 0
    for f in features:
        gold = dicts[f.example_index]["answers"][0]
        if f.start_position:
            spans = f.char_spans[f.start_position:f.end_position + 1]
            text = dicts[f.example_index]["context"][spans[0][0]:spans[-1][1]]
            assert gold["text"] in text
            exact += text == gold["text"]
    assert exact / len(examples) > 0.9  # most answers fall on token boundaries


# --- the training loop learns ------------------------------------------------------------

@pytest.mark.parametrize("task", ["jcommonsenseqa", "jnli", "jsts"])
def test_training_set_metric_rises_far_above_chance(task, tiny_model, tokenizer, tmp_path):
    spec = get_task(task)
    data = make_jglue_dir(tmp_path / "data", [task], repeat_to=64)
    examples = jglue_data.load_split(spec, data, "train")
    assert len(examples) == 64
    inputs = ft.build_inputs(spec, examples, tokenizer, spec.max_seq_length, True)
    ft.seed_everything(0)
    model = ft.build_model(spec, str(tiny_model))
    logs = []
    trained = ft.train_epochs(model, inputs.items, batch_size=8, learning_rate=2e-3,
                              epochs=20, seed=0, log=logs.append)
    assert len(logs) == 20 and "steps/s" in logs[0] and "ETA" in logs[0]
    metrics, rows = ft.score(spec, inputs, ft.predict(model, inputs.items, 64))
    losses = trained["epoch_losses"]
    print(task, metrics, f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    assert losses[-1] < 0.5 * losses[0]
    if task == "jsts":
        assert metrics["pearson"] > 0.8 and metrics["spearman"] > 0.8
    elif task == "jnli":
        assert metrics["accuracy"] >= 0.9  # chance: the majority label, about 0.7 here
    else:
        assert metrics["accuracy"] >= 0.9  # chance 0.2
    assert len(rows) == 64


# --- finetune(): outputs, resuming, errors -----------------------------------------------

def test_finetune_writes_outputs_and_resumes(tiny_model, tmp_path):
    data = make_jglue_dir(tmp_path / "data", ["jnli"])
    out = tmp_path / "out"
    config = ft.FinetuneConfig("jnli", str(tiny_model), str(data), str(out), epochs=2,
                               batch_size=8, max_seq_length=64)
    logs = []

    class Stop(Exception):
        pass

    def stop_in_last_epoch(line):
        logs.append(line)
        if line.startswith("epoch 2/2"):  # after epoch 1's checkpoint
            raise Stop

    with pytest.raises(Stop):
        ft.finetune(config, log=stop_in_last_epoch)
    assert (out / "checkpoint" / "state.pt").exists() and not (out / "metrics.json").exists()
    logs.clear()
    result = ft.finetune(config, log=logs.append)
    assert result["metrics"]["accuracy"] >= 0 and result["dev_examples"] == 30
    assert result["resumed_from_epoch"] == 1
    assert any(line.startswith("resuming after epoch 1/2") for line in logs)
    assert not any(line.startswith("epoch 1/2") for line in logs)
    assert (out / "model" / "config.json").exists() and (out / "model" / "vocab.txt").exists()
    assert (out / "metrics.json").exists() and not (out / "checkpoint").exists()
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and rows[0]["label"] in get_task("jnli").labels
    again = []
    assert ft.finetune(config, log=again.append)["metrics"] == result["metrics"]
    assert "already finished" in again[0]
    other = ft.FinetuneConfig("jnli", str(tiny_model), str(data), str(out), epochs=3,
                              batch_size=8, max_seq_length=64)
    with pytest.raises(ValueError, match="other settings"):
        ft.finetune(other)


def test_resume_from_epoch_checkpoint_gives_the_same_model(tiny_model, tokenizer, tmp_path):
    import torch

    spec = get_task("jsts")
    data = make_jglue_dir(tmp_path / "data", ["jsts"])
    inputs = ft.build_inputs(spec, jglue_data.load_split(spec, data, "train"), tokenizer,
                             64, True)
    kwargs = dict(batch_size=8, learning_rate=1e-3, epochs=3, seed=1, identity={"x": 1},
                  log=lambda _: None)

    def fresh():
        ft.seed_everything(1)
        return ft.build_model(spec, str(tiny_model))

    straight = fresh()
    ft.train_epochs(straight, inputs.items, checkpoint=str(tmp_path / "a"), **kwargs)
    # interrupted during epoch 3, then resumed with a fresh model
    partial = fresh()
    ckpt = str(tmp_path / "b")
    _train_and_interrupt(partial, inputs.items, ckpt, kwargs, interrupt_after_epoch=2)
    resumed = fresh()
    logs = []
    out = ft.train_epochs(resumed, inputs.items, checkpoint=ckpt, **{**kwargs, "log": logs.append})
    assert out["resumed_from_epoch"] == 2 and "resuming after epoch 2/3" in logs[0]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(),
                            strict=True):
        assert torch.allclose(a, b, atol=1e-5), name
    with pytest.raises(ValueError, match="another run"):
        ft.train_epochs(fresh(), inputs.items, checkpoint=ckpt,
                        **{**kwargs, "identity": {"x": 2}})


def _train_and_interrupt(model, items, ckpt, kwargs, interrupt_after_epoch):
    class Stop(Exception):
        pass

    def log(line):
        if line.startswith(f"epoch {interrupt_after_epoch + 1}/"):
            raise Stop

    with pytest.raises(Stop):
        ft.train_epochs(model, items, checkpoint=ckpt, **{**kwargs, "log": log})


def test_bad_input_gives_clear_errors(tiny_model, tmp_path):
    data = make_jglue_dir(tmp_path / "data", ["jsts"])
    out = str(tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        ft.finetune(ft.FinetuneConfig("jsts", str(tmp_path / "nope"), str(data), out))
    with pytest.raises(KeyError, match="unknown JGLUE task"):
        ft.finetune(ft.FinetuneConfig("glue", str(tiny_model), str(data), out))
    with pytest.raises(ValueError, match="--learning-rate must be > 0"):
        ft.finetune(ft.FinetuneConfig("jsts", str(tiny_model), str(data), out,
                                      learning_rate=0))
    with pytest.raises(FileNotFoundError, match="jnli-v1.3/train-v1.3.json"):
        ft.finetune(ft.FinetuneConfig("jnli", str(tiny_model), str(data), out))
    bad = get_task("jsts").path(data, "train")
    bad.write_text('{"sentence1": "a", "sentence2": "b", "label": "4.4"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="train-v1.3.json:1"):
        ft.finetune(ft.FinetuneConfig("jsts", str(tiny_model), str(data), out))
