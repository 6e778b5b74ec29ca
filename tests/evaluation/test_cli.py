"""``bertjp evaluate`` and ``bertjp finetune`` end to end on the JGLUE samples."""

import json

import pytest

import bertjp_cli
from tests.evaluation.test_finetune import make_jglue_dir, make_tiny_model

FEW = ["--epochs", "1", "--batch-size", "16"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("cli") / "bert", hidden=32)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_jglue_dir(tmp_path_factory.mktemp("jglue") / "datasets")


def _marc_ja(data_dir):
    rows = [("この商品は最高です。また買いたい。", "positive"),
            ("すぐに壊れました。最悪です。", "negative"),
            ("とても使いやすくて満足しています。", "positive"),
            ("二度と買いません。", "negative")] * 4
    for split in ("train", "valid"):
        path = data_dir / "marc_ja-v1.3" / f"{split}-v1.3.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({"sentence": s, "label": label, "review_id": f"R{i}"},
                                           ensure_ascii=False) + "\n"
                                for i, (s, label) in enumerate(rows)), encoding="utf-8")


def test_evaluate_runs_every_task_present(model, data, tmp_path, capsys):
    out = tmp_path / "out"
    code = bertjp_cli.main(["evaluate", "--model", str(model), "--data", str(data),
                            "--output", str(out), "--name", "tiny", *FEW])
    printed = capsys.readouterr().out
    assert code == 0, printed
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert set(results["tasks"]) == {"jsts", "jnli", "jsquad", "jcommonsenseqa"}
    assert "marc-ja" in results["skipped"] and results["metrics"]["marc-ja"] is None
    for name in ("jsts", "jnli", "jsquad", "jcommonsenseqa"):
        assert results["metrics"][name], name
        assert (out / name / "metrics.json").exists() and (out / name / "model").is_dir()
    squad = results["metrics"]["jsquad"]
    assert {"exact_match", "f1", "span_exact_match", "span_f1"} <= set(squad)
    # the README layout: one row per model, a column per task, MARC-ja shown as not run
    table = [line for line in printed.splitlines() if line.startswith("| tiny |")]
    assert len(table) == 1 and table[0].split("|")[2].strip() == "—"
    header = next(line for line in printed.splitlines() if line.startswith("| model |"))
    for title in ("MARC-ja acc", "JSTS Pearson/Spearman", "JNLI acc", "JSQuAD EM/F1",
                  "JCommonsenseQA acc"):
        assert title in header
    # a row per task, MARC-ja's saying why it was skipped
    titles = {"MARC-ja acc", "JSTS Pearson/Spearman", "JNLI acc", "JSQuAD EM/F1",
              "JCommonsenseQA acc"}
    rows = {line.split("|")[1].strip(): line for line in printed.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip() in titles}
    assert set(rows) == titles
    assert "skipped" in rows["MARC-ja acc"] and "not found" in rows["MARC-ja acc"]
    markdown = (out / "results.md").read_text(encoding="utf-8")
    assert "| tiny |" in markdown and "MARC-ja acc" in markdown
    rows = [json.loads(line) for line in
            (out / "jsquad" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 405 and {"prediction", "span_prediction", "answers"} <= set(rows[0])
    # rerunning reuses the finished runs
    assert bertjp_cli.main(["evaluate", "--model", str(model), "--data", str(data),
                            "--output", str(out), "--name", "tiny", *FEW]) == 0
    assert "already finished" in capsys.readouterr().out


def test_marc_ja_and_the_grid(model, tmp_path, capsys, monkeypatch):
    from evaluation import features

    data = make_jglue_dir(tmp_path / "datasets", ["jnli"])
    _marc_ja(data)
    loads = []
    original = features.load_tokenizer
    monkeypatch.setattr(features, "load_tokenizer", lambda d: loads.append(d) or original(d))
    out = tmp_path / "out"
    code = bertjp_cli.main(["evaluate", "--model", str(model), "--data", str(data),
                            "--output", str(out), "--tasks", "marc-ja", "--grid",
                            "--batch-size", "16", "--seed", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert list(results["tasks"]) == ["marc-ja"]
    grid = results["tasks"]["marc-ja"]["grid"]
    assert len(grid) == 6
    assert {(p["hyperparameters"]["learning_rate"], p["hyperparameters"]["epochs"])
            for p in grid} == {(lr, ep) for lr in (5e-5, 3e-5, 2e-5) for ep in (3, 4)}
    best = max(grid, key=lambda p: p["selection_score"])
    assert results["tasks"]["marc-ja"]["hyperparameters"] == best["hyperparameters"]
    assert "dev set" in results["selection"] and "best of grid" in printed
    assert results["metrics"]["marc-ja"]["accuracy"] == best["metrics"]["accuracy"]
    assert len(loads) == 2  # train and dev tokenized once for the six runs


def test_finetune_command(model, data, tmp_path, capsys):
    out = tmp_path / "jcqa"
    assert bertjp_cli.main(["finetune", "--task", "jcommonsenseqa", "--model", str(model),
                            "--data", str(data), "--output", str(out), "--epochs", "2",
                            "--learning-rate", "1e-4", "--max-seq-length", "32"]) == 0
    printed = capsys.readouterr().out
    assert "epoch 1/2" in printed and "epoch 2/2" in printed and "steps/s" in printed
    summary = json.loads(printed.strip().splitlines()[-1])
    assert summary["hyperparameters"]["batch_size"] == 64  # JGLUE's default for JCQA
    assert summary["hyperparameters"]["max_seq_length"] == 32
    assert 0 <= summary["metrics"]["accuracy"] <= 1


@pytest.mark.parametrize("argv, message", [
    (["finetune", "--task", "glue"], "unknown JGLUE task"),
    (["evaluate", "--grid", "--learning-rate", "3e-5"], "--grid searches"),
    (["evaluate", "--tasks", "jnli"], "jnli-v1.3/train-v1.3.json: no such file"),
    (["evaluate", "--model", "/nonexistent"], "no such directory"),
])
def test_bad_input_gives_one_line_errors(argv, message, model, tmp_path, capsys):
    base = {"--model": str(model), "--data": str(tmp_path), "--output": str(tmp_path / "o")}
    if argv[0] == "finetune":
        base.pop("--model")
        argv = argv + ["--model", str(model), "--data", str(tmp_path), "--output",
                       str(tmp_path / "o")]
    else:
        argv = argv + [x for k, v in base.items() if k not in argv for x in (k, v)]
    with pytest.raises(SystemExit) if argv[1:3] == ["--task", "glue"] else _nothing():
        code = bertjp_cli.main(argv)
        assert code != 0
    err = capsys.readouterr().err
    assert message in err, err


def test_no_task_present(model, tmp_path, capsys):
    assert bertjp_cli.main(["evaluate", "--model", str(model), "--data", str(tmp_path),
                            "--output", str(tmp_path / "o")]) == 1
    assert "no JGLUE task to run" in capsys.readouterr().err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_repeated_tasks_flag_keeps_every_value():
    from evaluation.cli import _evaluate_parser

    args = _evaluate_parser().parse_args(["--model", "m", "--data", "d", "--output", "o",
                                          "--tasks", "jsts", "--tasks", "jnli", "JSQuAD"])
    assert args.tasks == ["jsts", "jnli", "jsquad"]
