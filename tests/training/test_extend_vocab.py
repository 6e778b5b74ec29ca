"""``bertjp extend-vocab`` on a tiny transformers BertForPreTraining with the released
WordPiece vocabulary (32,768 tokens, 10 ``[unused*]`` slots)."""

import gzip
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

import bertjp_cli  # noqa: E402
from bertjp.tokenization import JapaneseTokenizer  # noqa: E402
from bertjp.vocab_files import read_vocab, tokenizer_files  # noqa: E402
from tests.conftest import REFERENCE  # noqa: E402
from training import extend_vocab as ev  # noqa: E402

VOCAB_DIR = REFERENCE / "vocab" / "wordpiece_unidic_lite"
OLD_SIZE = 32768
# one MeCab word each, 2-5 pieces before (トークナイザー: トーク ##ナイ ##ザー)
WORDS = ["トークナイザー", "エンベディング", "サブスクリプション", "アノテーション",
         "デプロイメント", "クラスタリング", "ミドルウェア", "レイテンシー",
         "スループット", "パイプライン", "Kubernetes", "リポジトリ"]
TEXT = ["今日は良い天気です。", "東京大学で自然言語処理を研究しています。"]


@pytest.fixture(scope="module")
def tokenizer():
    return JapaneseTokenizer(VOCAB_DIR)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from transformers import BertConfig, BertForPreTraining

    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(
        vocab_size=OLD_SIZE, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=64,
        architectures=["BertForPreTraining"])).eval()
    with torch.no_grad():  # a nonzero bias, so that the bias rows are checked
        model.cls.predictions.bias.normal_(0.0, 0.5)
    out = tmp_path_factory.mktemp("model") / "released"
    model.save_pretrained(out)
    for name, data in tokenizer_files(read_vocab(str(VOCAB_DIR)), "wordpiece").items():
        (out / name).write_bytes(data)
    return out


def _load(directory):
    from transformers import BertForPreTraining

    return BertForPreTraining.from_pretrained(directory, local_files_only=True).eval()


@pytest.fixture(scope="module")
def appended(model_dir, tmp_path_factory):
    """All 12 words plus a present, an unknown and a repeated one: 10 slots + 2 rows."""
    out = tmp_path_factory.mktemp("ext") / "appended"
    report = ev.extend_vocab(model_dir, out, WORDS + ["東京", "𠮷", "トークナイザー", "a b"],
                             log=lambda _: None)
    return out, report


def _mlm_logits(model, tokenizer, text):
    ids = [2] + tokenizer.encode(text)[1] + [3]
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).prediction_logits[0], ids


def test_a_word_split_into_three_pieces_becomes_one_token(tokenizer, appended):
    before = ["トーク", "##ナイ", "##ザー", "を", "作る"]
    assert tokenizer.tokenize("トークナイザーを作る") == before
    out, report = appended
    after = JapaneseTokenizer(out)
    tokens, ids = after.encode("トークナイザーを作る")
    assert tokens == ["トークナイザー", "を", "作る"]
    assert ids[0] == report["added"][0]["id"] == after.ids["トークナイザー"]
    for word in WORDS:
        assert after.tokenize(word) == [word]


def test_slots_first_then_appended_and_old_ids_unchanged(tokenizer, appended):
    out, report = appended
    vocab = read_vocab(str(out))
    slots = [i for i, t in enumerate(tokenizer.vocab) if t.startswith("[unused")]
    assert len(slots) == 10 and report["old_vocab_size"] == OLD_SIZE
    assert len(vocab) == report["vocab_size"] == OLD_SIZE + 2
    added = {a["word"]: a for a in report["added"]}
    assert [added[w]["id"] for w in WORDS] == slots + [OLD_SIZE, OLD_SIZE + 1]
    assert [added[w]["slot"] for w in WORDS] == [True] * 10 + [False] * 2
    for i, token in enumerate(tokenizer.vocab):
        assert vocab[i] == (token if i not in slots else WORDS[slots.index(i)])
    assert vocab[OLD_SIZE:] == WORDS[10:]
    # reported: present, unknown, repeated, invalid
    assert report["present"] == {"東京": tokenizer.ids["東京"]}
    assert report["unknown"] == ["𠮷"] and report["duplicates"] == ["トークナイザー"]
    assert list(report["invalid"]) == ["a b"]
    assert json.loads((out / "extend_vocab.json").read_text("utf-8")) == report
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == OLD_SIZE + 2


def test_few_words_fill_slots_without_resizing(model_dir, tokenizer, tmp_path):
    out = tmp_path / "slots"
    report = ev.extend_vocab(model_dir, out, WORDS[:3], log=lambda _: None)
    assert report["vocab_size"] == OLD_SIZE and len(read_vocab(str(out))) == OLD_SIZE
    model = _load(out)
    assert model.get_input_embeddings().weight.shape[0] == OLD_SIZE
    assert [a["id"] for a in report["added"]] == [5, 6, 7]  # [unused0..2]
    assert JapaneseTokenizer(out).tokenize(WORDS[0]) == [WORDS[0]]


def test_new_rows_are_the_mean_of_the_pieces(model_dir, tokenizer, appended):
    out, report = appended
    old, new = _load(model_dir), _load(out)
    old_emb, new_emb = old.get_input_embeddings().weight, new.get_input_embeddings().weight
    old_bias, new_bias = old.cls.predictions.bias, new.cls.predictions.bias
    assert new_emb.shape == (OLD_SIZE + 2, 32) and new_bias.shape == (OLD_SIZE + 2,)
    # the decoder stays tied to the embeddings, its bias to cls.predictions.bias
    assert torch.equal(new.get_output_embeddings().weight, new_emb)
    assert torch.equal(new.get_output_embeddings().bias, new_bias)
    for a in report["added"]:
        assert a["piece_ids"] == tokenizer.encode(a["word"])[1]
        assert len(a["piece_ids"]) >= 2
        ids = torch.tensor(a["piece_ids"])
        torch.testing.assert_close(new_emb[a["id"]], old_emb[ids].mean(0))
        torch.testing.assert_close(new_bias[a["id"]], old_bias[ids].mean())
    assert not torch.isnan(new_emb).any()
    changed = {a["id"] for a in report["added"]}
    kept = torch.tensor([i for i in range(OLD_SIZE) if i not in changed])
    assert torch.equal(new_emb[kept], old_emb[kept])
    assert torch.equal(new_bias[kept], old_bias[kept])


def test_mlm_output_on_text_without_the_new_words_is_unchanged(model_dir, tokenizer, appended):
    out, report = appended
    old, new = _load(model_dir), _load(out)
    after = JapaneseTokenizer(out)
    kept = torch.tensor([i for i in range(OLD_SIZE) if i >= 15])  # not a slot
    for text in TEXT:
        assert after.encode(text) == tokenizer.encode(text)
        old_logits, ids = _mlm_logits(old, tokenizer, text)
        new_logits, _ = _mlm_logits(new, after, text)
        assert new_logits.shape == (len(ids), OLD_SIZE + 2)
        torch.testing.assert_close(new_logits[:, kept], old_logits[:, kept],
                                   rtol=0, atol=1e-5)
        # the loss over the old ids is the same; with the new ids in the softmax (means
        # of existing rows) it moves only by their small share of probability
        labels = torch.tensor(ids)
        loss = torch.nn.functional.cross_entropy
        targets = labels[1:-1]
        torch.testing.assert_close(
            loss(new_logits[1:-1][:, kept], torch.searchsorted(kept, targets)),
            loss(old_logits[1:-1][:, kept], torch.searchsorted(kept, targets)))
        full_old = loss(old_logits[1:-1], targets)
        full_new = loss(new_logits[1:-1], targets)
        assert abs(full_new - full_old) < 1e-2


def test_transformers_loads_the_output_offline(appended):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    out, report = appended
    tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert type(tok).__name__ == "BertJapaneseTokenizer"
    assert tok.tokenize("トークナイザーを作る") == ["トークナイザー", "を", "作る"]
    assert tok.convert_tokens_to_ids("Kubernetes") == OLD_SIZE
    model = AutoModelForMaskedLM.from_pretrained(out, local_files_only=True).eval()
    enc = tok("Kubernetesとトークナイザー", return_tensors="pt")
    assert OLD_SIZE in enc["input_ids"][0].tolist()
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape[-1] == OLD_SIZE + 2 and not torch.isnan(logits).any()


def test_pretraining_data_uses_the_new_ids(appended, tmp_path):
    from bertjp.records import decode_example, iter_records
    from pipelines import pretraining_data

    out, _ = appended
    corpus = tmp_path / "corpus.txt"
    lines = [f"{i}番目の文でKubernetesとトークナイザーとエンベディングを使います。"
             for i in range(12)]
    corpus.write_text("\n".join(lines[:6]) + "\n\n" + "\n".join(lines[6:]) + "\n", "utf-8")
    manifest = pretraining_data.run([
        "--input", str(corpus), "--vocab", str(out), "--output", str(tmp_path / "data"),
        "--num-shards", "1", "--dupe-factor", "1", "--max-seq-length", "64",
        "--max-predictions-per-seq", "10"])
    seen = set()
    for o in manifest["outputs"]:
        if o["role"] == "shard":
            with gzip.open(o["path"], "rb") as f:
                for r in iter_records(f):
                    features = decode_example(r)
                    seen.update(features["input_word_ids"][1])
                    seen.update(features["masked_lm_ids"][1])
    assert {OLD_SIZE, 5, 6} <= seen  # Kubernetes (appended), [unused0], [unused1] slots
    # ... and pass train's --init-from preflight against the extended model
    from training import preflight

    assert preflight.init_problems(manifest, init_dir=str(out), vocab_size=OLD_SIZE + 2,
                                   max_position_embeddings=512, vocab_dir=str(out)) == []
    original = preflight.init_problems(manifest, init_dir="old", vocab_size=OLD_SIZE,
                                       max_position_embeddings=512,
                                       vocab_dir=str(VOCAB_DIR))
    assert len(original) == 1 and "another vocabulary" in original[0]


def test_corpus_top_k_adds_the_most_frequent_split_words(model_dir, tokenizer, tmp_path):
    corpus = tmp_path / "domain.txt.gz"
    text = "スループットとレイテンシー。\n" * 3 + "スループットを測る。 2019年\n" + "東京\n" * 9
    with gzip.open(corpus, "wt", encoding="utf-8") as f:
        f.write(text)
    words = tmp_path / "words.txt"
    words.write_text("ミドルウェア\n\nレイテンシー\n", "utf-8")
    out = tmp_path / "ext"
    assert bertjp_cli.main(["extend-vocab", "--model", str(model_dir), "--words", str(words),
                            "--corpus", str(corpus), "--top-k", "1",
                            "--output", str(out)]) == 0
    report = json.loads((out / "extend_vocab.json").read_text("utf-8"))
    # 東京 is one token; 2019 has no letter; レイテンシー is already listed
    assert report["corpus_words"] == [{"word": "スループット", "count": 4}]
    assert [a["word"] for a in report["added"]] == ["ミドルウェア", "レイテンシー", "スループット"]


def test_mecab_split_words_are_reported(model_dir, tmp_path):
    lines = []
    report = ev.extend_vocab(model_dir, tmp_path / "x", ["ハイパーバイザー"], log=lines.append)
    assert report["mecab_split"] == ["ハイパーバイザー"]
    assert any("MeCab splits 'ハイパーバイザー' into ハイパー | バイザー" in line for line in lines)


def test_nothing_is_written_on_failure(model_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="no word to add"):
        ev.extend_vocab(model_dir, out, ["東京", "𠮷"], log=lambda _: None)
    assert not out.exists()
    assert bertjp_cli.main(["extend-vocab", "--model", str(model_dir), "--output", str(out),
                            "--words", str(tmp_path / "missing.txt")]) == 1
    assert "bertjp extend-vocab: error:" in capsys.readouterr().err

    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    from transformers import PreTrainedModel

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ev.extend_vocab(model_dir, out, WORDS[:2], log=lambda _: None)
    assert sorted(os.listdir(tmp_path)) == []
    out.mkdir()
    (out / "keep").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        ev.extend_vocab(model_dir, out, WORDS[:2], log=lambda _: None)
    with pytest.raises(ValueError, match="is the --model directory"):
        ev.extend_vocab(model_dir, model_dir, WORDS[:2], overwrite=True, log=lambda _: None)
    assert (out / "keep").exists()
    with pytest.raises(ValueError, match="inside --output"):
        ev.extend_vocab(model_dir, model_dir.parent, WORDS[:2], overwrite=True,
                        log=lambda _: None)
    monkeypatch.undo()
    report = ev.extend_vocab(model_dir, out, WORDS[:2], overwrite=True, log=lambda _: None)
    assert not (out / "keep").exists() and (out / "extend_vocab.json").exists()
    assert report["vocab_size"] == OLD_SIZE


def test_a_model_without_tokenizer_config_gets_one(model_dir, tmp_path):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare)
    (bare / "tokenizer_config.json").unlink()
    ev.extend_vocab(bare, tmp_path / "out", WORDS[:1], log=lambda _: None)
    config = json.loads((tmp_path / "out" / "tokenizer_config.json").read_text("utf-8"))
    assert config["tokenizer_class"] == "BertJapaneseTokenizer"
    assert config["subword_tokenizer_type"] == "wordpiece"
    assert config["mecab_kwargs"] == {"mecab_dic": "unidic_lite"}
    (bare / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "BertJapaneseTokenizer", "subword_tokenizer_type": "character"}))
    with pytest.raises(ValueError, match="extend-vocab adds WordPiece tokens"):
        ev.extend_vocab(bare, tmp_path / "out2", WORDS[:1], log=lambda _: None)
    assert not (tmp_path / "out2").exists()
