"""JGLUE task registry and readers, on real JGLUE v1.3 samples and broken copies of them."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from evaluation import data, tasks
from evaluation.data import DataFileNotFoundError, JGLUEDataError

JGLUE = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "jglue"
JSTS = JGLUE / "jsts-train-v1.3.head30.json"
JNLI = JGLUE / "jnli-test-v1.3.head30.json"
JCQA = JGLUE / "jcommonsenseqa-train-v1.3.head30.json"
JSQUAD = JGLUE / "jsquad-test-v1.3.first2articles.json"


def lines_of(path: pathlib.Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def broken_copy(tmp_path, source: pathlib.Path, lineno: int, edit) -> pathlib.Path:
    """A copy of a JSON Lines file whose line ``lineno`` (1-based) is ``edit(obj)``."""
    lines = lines_of(source)
    new = edit(json.loads(lines[lineno - 1]))
    lines[lineno - 1] = new if isinstance(new, str) else json.dumps(new, ensure_ascii=False)
    path = tmp_path / source.name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def with_(key, value):
    def edit(obj):
        obj[key] = value
        return obj
    return edit


def without(key):
    def edit(obj):
        del obj[key]
        return obj
    return edit


# --- registry ----------------------------------------------------------------------------


def test_registry_defaults():
    assert tasks.TASK_NAMES == ("marc-ja", "jsts", "jnli", "jsquad", "jcommonsenseqa")
    assert {n: t.max_seq_length for n, t in tasks.TASKS.items()} == {
        "marc-ja": 512, "jsts": 128, "jnli": 128, "jsquad": 384, "jcommonsenseqa": 64}
    assert {n: t.batch_size for n, t in tasks.TASKS.items()} == {
        "marc-ja": 32, "jsts": 32, "jnli": 32, "jsquad": 32, "jcommonsenseqa": 64}
    for task in tasks.TASKS.values():
        assert task.learning_rates == (5e-5, 3e-5, 2e-5)
        assert task.epochs == (3, 4)
        assert task.warmup_ratio == 0.1 and task.weight_decay == 0.0
    qa = tasks.TASKS["jsquad"].qa
    assert (qa.doc_stride, qa.max_query_length, qa.max_answer_length, qa.n_best_size) == (
        128, 64, 30, 20)


def test_registry_labels_kinds_metrics():
    jnli, marc, jcqa, jsts = (tasks.get_task(n) for n in
                              ("jnli", "MARC_ja", "jcommonsenseqa", "jsts"))
    assert [jnli.label_id(x) for x in ("contradiction", "entailment", "neutral")] == [0, 1, 2]
    assert [marc.label_id(x) for x in ("negative", "positive")] == [0, 1]
    assert jcqa.num_choices == 5 and jcqa.num_labels == 5
    assert jsts.kind is tasks.TaskKind.REGRESSION and jsts.num_labels == 1
    assert jsts.label_range == (0.0, 5.0)
    assert jsts.metrics == ("pearson", "spearman")
    assert tasks.TASKS["jsquad"].metrics == ("exact_match", "f1")
    assert not marc.distributed and jsts.distributed
    with pytest.raises(KeyError, match="contradiction"):
        jnli.label_id("maybe")
    with pytest.raises(KeyError, match="jcola"):
        tasks.get_task("jcola")


def test_registry_is_frozen():
    with pytest.raises(AttributeError):
        tasks.TASKS["jsts"].max_seq_length = 256  # type: ignore[misc]
    with pytest.raises(TypeError):
        tasks.TASKS["x"] = tasks.TASKS["jsts"]  # type: ignore[index]


def test_file_layout():
    jsts = tasks.get_task("jsts")
    assert jsts.path("/d", "valid") == pathlib.Path("/d/jsts-v1.3/valid-v1.3.json")
    assert tasks.get_task("jcommonsenseqa").path("/d", "train") == pathlib.Path(
        "/d/jcommonsenseqa-v1.3/train-v1.3.json")
    assert tasks.get_task("marc-ja").path("/d", "test") == pathlib.Path(
        "/d/marc_ja-v1.3/test-v1.3.json")
    with pytest.raises(ValueError, match="dev"):
        jsts.file_name("dev")


# --- readers on the real samples ---------------------------------------------------------


def test_read_jsts():
    examples = data.read_jsts(JSTS)
    assert len(examples) == 30
    assert examples[0].label == 0.0 and examples[1].label == 3.8
    assert examples[1].guid == "1"
    assert examples[1].sentence1 == "二人の男性がジャンボジェット機を見ています。"
    assert all(isinstance(e.label, float) and 0 <= e.label <= 5 for e in examples)


def test_read_jnli():
    examples = data.read_jnli(JNLI)
    assert len(examples) == 30
    assert examples[0].label == 2  # neutral
    raw = [json.loads(line)["label"] for line in lines_of(JNLI)]
    assert [e.label for e in examples] == [
        ("contradiction", "entailment", "neutral").index(x) for x in raw]


def test_read_jcommonsenseqa():
    examples = data.read_jcommonsenseqa(JCQA)
    assert len(examples) == 30
    first = examples[0]
    assert first.guid == "0" and first.label == 2
    assert first.choices == ("世界", "写真集", "絵本", "論文", "図鑑")


def test_read_jsquad_keeps_the_title_in_the_context():
    examples = data.read_jsquad(JSQUAD)
    assert len(examples) == 405
    assert len({e.qid for e in examples}) == 405
    for e in examples:
        assert e.context.startswith(e.title + " [SEP] ")
        for a in e.answers:
            assert e.context[a.answer_start:a.answer_start + len(a.text)] == a.text
    first = examples[0]
    assert first.qid == "a1025052p0q0" and first.title == "ジェイ・キャスト"
    assert [(a.text, a.answer_start) for a in first.answers] == [
        ("株式会社ジェイ・キャスト", 15), ("ジェイ・キャスト", 0), ("株式会社ジェイ・キャスト", 15)]
    in_title = [a for e in examples for a in e.answers if a.answer_start < len(e.title)]
    assert in_title  # answers inside the title survive


def test_read_marc_ja(tmp_path):
    path = tmp_path / "valid-v1.3.json"
    rows = [{"sentence": "とても良い。", "label": "positive", "review_id": "R1"},
            {"sentence": "最悪でした", "label": "negative"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    examples = data.read_marc_ja(path)
    assert [(e.guid, e.label) for e in examples] == [("R1", 1), ("valid-v1.3-2", 0)]


# --- layout: load_split and resolve_tasks ------------------------------------------------


@pytest.fixture()
def data_dir(tmp_path):
    """JGLUE's layout with the samples standing in for train and valid (MARC-ja absent)."""
    root = tmp_path / "datasets"
    for name, source in (("jsts", JSTS), ("jnli", JNLI), ("jcommonsenseqa", JCQA),
                         ("jsquad", JSQUAD)):
        for split in ("train", "valid"):
            target = tasks.get_task(name).path(root, split)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return root


def test_load_split(data_dir):
    assert len(data.load_split("jsts", data_dir, "valid")) == 30
    assert len(data.load_split(tasks.get_task("jsquad"), data_dir)) == 405


def test_resolve_tasks_skips_marc_ja_with_a_message(data_dir):
    found, skipped = data.resolve_tasks(data_dir)
    assert [t.name for t in found] == ["jsts", "jnli", "jsquad", "jcommonsenseqa"]
    assert len(skipped) == 1
    assert "MARC-ja" in skipped[0] and "marc_ja-v1.3" in skipped[0]
    assert "no longer distributed" in skipped[0]


def test_resolve_tasks_uses_marc_ja_when_present(data_dir):
    for split in ("train", "valid"):
        path = tasks.get_task("marc-ja").path(data_dir, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"sentence": "良い", "label": "positive"}\n', encoding="utf-8")
    found, skipped = data.resolve_tasks(data_dir, ["marc-ja", "jsts"])
    assert [t.name for t in found] == ["marc-ja", "jsts"] and skipped == []
    assert len(data.load_split("marc-ja", data_dir)) == 1


def test_resolve_tasks_missing_distributed_file_is_an_error(data_dir):
    missing = tasks.get_task("jnli").path(data_dir, "valid")
    missing.unlink()
    with pytest.raises(DataFileNotFoundError, match=str(missing)):
        data.resolve_tasks(data_dir)


# --- broken files ------------------------------------------------------------------------


@pytest.mark.parametrize("reader", [data.read_jsts, data.read_jnli, data.read_jcommonsenseqa,
                                    data.read_marc_ja, data.read_jsquad])
def test_missing_file(tmp_path, reader):
    path = tmp_path / "valid-v1.3.json"
    with pytest.raises(DataFileNotFoundError, match=f"{path}: no such file"):
        reader(path)
    with pytest.raises(FileNotFoundError):  # also an ordinary FileNotFoundError
        reader(path)


@pytest.mark.parametrize("reader", [data.read_jsts, data.read_jnli, data.read_jcommonsenseqa,
                                    data.read_marc_ja])
@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_dev_file(tmp_path, reader, content):
    path = tmp_path / "valid-v1.3.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(JGLUEDataError, match=f"{path}: no examples"):
        reader(path)


def test_malformed_line(tmp_path):
    path = broken_copy(tmp_path, JSTS, 5, lambda obj: json.dumps(obj)[:-7])
    with pytest.raises(JGLUEDataError, match=f"{path}:5: not valid JSON"):
        data.read_jsts(path)


def test_line_that_is_not_an_object(tmp_path):
    path = broken_copy(tmp_path, JNLI, 4, lambda obj: "[1, 2]")
    with pytest.raises(JGLUEDataError, match=f"{path}:4: expected a JSON object, got list"):
        data.read_jnli(path)


@pytest.mark.parametrize("source, reader, lineno, edit, message", [
    (JNLI, data.read_jnli, 3, without("sentence1"), "missing field 'sentence1'"),
    (JSTS, data.read_jsts, 2, with_("label", "3.8"), "field 'label' must be int or float"),
    (JSTS, data.read_jsts, 7, with_("sentence2", None), "field 'sentence2' must be str"),
    (JCQA, data.read_jcommonsenseqa, 9, without("choice4"), "missing field 'choice4'"),
    (JCQA, data.read_jcommonsenseqa, 10, with_("label", "2"), "field 'label' must be int"),
    (JCQA, data.read_jcommonsenseqa, 11, with_("label", True), "field 'label' must be int"),
])
def test_wrong_or_missing_field(tmp_path, source, reader, lineno, edit, message):
    path = broken_copy(tmp_path, source, lineno, edit)
    with pytest.raises(JGLUEDataError, match=f"{path}:{lineno}: {message}"):
        reader(path)


@pytest.mark.parametrize("source, reader, lineno, label, message", [
    (JNLI, data.read_jnli, 7, "maybe", "label 'maybe' is not a JNLI label"),
    (JNLI, data.read_jnli, 8, "Entailment", "label 'Entailment' is not a JNLI label"),
    (JSTS, data.read_jsts, 12, 5.5, "label 5.5 is outside JSTS's range"),
    (JSTS, data.read_jsts, 13, -0.1, "label -0.1 is outside JSTS's range"),
    (JCQA, data.read_jcommonsenseqa, 14, 5, "label 5 is not a choice index"),
    (JCQA, data.read_jcommonsenseqa, 15, -1, "label -1 is not a choice index"),
])
def test_label_outside_the_task_set(tmp_path, source, reader, lineno, label, message):
    path = broken_copy(tmp_path, source, lineno, with_("label", label))
    with pytest.raises(JGLUEDataError, match=f"{path}:{lineno}: {message}"):
        reader(path)


def test_marc_ja_bad_label(tmp_path):
    path = tmp_path / "train-v1.3.json"
    path.write_text('{"sentence": "a", "label": "positive"}\n'
                    '{"sentence": "b", "label": "neutral"}\n', encoding="utf-8")
    with pytest.raises(JGLUEDataError, match=f"{path}:2: label 'neutral' is not a MARC-ja"):
        data.read_marc_ja(path)


# --- broken JSQuAD -----------------------------------------------------------------------


def broken_jsquad(tmp_path, edit) -> pathlib.Path:
    root = json.loads(JSQUAD.read_text(encoding="utf-8"))
    edit(root)
    path = tmp_path / JSQUAD.name
    path.write_text(json.dumps(root, ensure_ascii=False), encoding="utf-8")
    return path


def qa_of(root, article=0, paragraph=0, question=0):
    return root["data"][article]["paragraphs"][paragraph]["qas"][question]


def test_jsquad_answer_start_off_by_one(tmp_path):
    def edit(root):
        qa_of(root, 1, 2, 0)["answers"][1]["answer_start"] += 1
    path = broken_jsquad(tmp_path, edit)
    qid = qa_of(json.loads(path.read_text(encoding="utf-8")), 1, 2, 0)["id"]
    with pytest.raises(JGLUEDataError,
                       match=f"{path}: question {qid}: answer 1: answer_start .* does not "
                             f"point at its text"):
        data.read_jsquad(path)


def test_jsquad_stripped_title_breaks_answer_start(tmp_path):
    def edit(root):
        paragraph = root["data"][0]["paragraphs"][0]
        paragraph["context"] = paragraph["context"].split(" [SEP] ", 1)[1]
    path = broken_jsquad(tmp_path, edit)
    with pytest.raises(JGLUEDataError, match="question a1025052p0q0: answer 0: answer_start"):
        data.read_jsquad(path)


@pytest.mark.parametrize("edit, message", [
    (lambda root: qa_of(root).pop("question"), "question a1025052p0q0: missing field "
                                               "'question'"),
    (lambda root: qa_of(root).update(answers=[]), "question a1025052p0q0: no answers"),
    (lambda root: qa_of(root).update(is_impossible=True), "question a1025052p0q0: "
                                                          "is_impossible must be false"),
    (lambda root: qa_of(root)["answers"][2].update(answer_start="15"),
     "question a1025052p0q0: answer 2: field 'answer_start' must be int"),
    (lambda root: qa_of(root, 0, 0, 1).update(id="a1025052p0q0"),
     "question a1025052p0q0: duplicate question id"),
    (lambda root: qa_of(root, 0, 1, 0).pop("id"), "article 0 paragraph 1 question 0: missing "
                                                  "field 'id'"),
    (lambda root: root["data"][1].pop("title"), "article 1: missing field 'title'"),
    (lambda root: root.pop("data"), "missing field 'data'"),
])
def test_jsquad_broken_fields(tmp_path, edit, message):
    path = broken_jsquad(tmp_path, edit)
    with pytest.raises(JGLUEDataError, match=f"{path}: {message}"):
        data.read_jsquad(path)


def test_jsquad_malformed_json(tmp_path):
    path = tmp_path / "valid-v1.3.json"
    path.write_text('{"data": [\n  {"title": "x",\n  "paragraphs": [}\n]}\n', encoding="utf-8")
    with pytest.raises(JGLUEDataError, match=f"{path}:3: not valid JSON"):
        data.read_jsquad(path)


def test_jsquad_empty_dev_file(tmp_path):
    path = tmp_path / "valid-v1.3.json"
    path.write_text('{"data": []}', encoding="utf-8")
    with pytest.raises(JGLUEDataError, match=f"{path}: no examples"):
        data.read_jsquad(path)
