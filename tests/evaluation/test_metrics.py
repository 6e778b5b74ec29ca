"""JGLUE metrics against hand-computed values and JGLUE's normalisation rules."""

from __future__ import annotations

import math

import pytest

from evaluation import metrics
from evaluation.metrics import (
    ConstantInputError,
    accuracy,
    char_f1,
    exact_match,
    jsquad_scores,
    normalize_answer,
    pearson,
    spearman,
)

# --- accuracy ----------------------------------------------------------------------------


def test_accuracy():
    assert accuracy([0, 1, 2, 1], [0, 1, 1, 1]) == 0.75
    assert accuracy([4], [4]) == 1.0


@pytest.mark.parametrize("preds, labels", [([], []), ([0, 1], [0])])
def test_accuracy_rejects_empty_or_unequal(preds, labels):
    with pytest.raises(ValueError):
        accuracy(preds, labels)


# --- correlations ------------------------------------------------------------------------


def test_pearson_hand_computed():
    # dx = dy-permuted [-1.5,-.5,.5,1.5]: sum(dx*dy) = 3, sxx = syy = 5 -> 0.6
    assert pearson([1, 2, 3, 4], [2, 1, 4, 3]) == pytest.approx(0.6)
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_spearman_ties_use_average_ranks():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4] -> 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(3 / math.sqrt(10))
    assert spearman([0.5, 0.5, 0.1], [2.0, 2.0, 1.0]) == pytest.approx(1.0)


def test_spearman_is_rank_based_and_pearson_is_not():
    x, y = [1, 2, 3, 4], [1, 4, 9, 100]
    assert spearman(x, y) == pytest.approx(1.0)
    assert pearson(x, y) < 0.9


def test_raw_unclipped_outputs_are_scored_as_given():
    # a regression head may predict outside [0, 5]; nothing clips it (clipped, r would be 1)
    # dx = [-10, -1, 11]/3, dy = [-7, -1, 8]/3 -> 159 / sqrt(222 * 114)
    assert pearson([-1.0, 2.0, 6.0], [0.0, 2.0, 5.0]) == pytest.approx(
        159 / math.sqrt(222 * 114))


@pytest.mark.parametrize("fn", [pearson, spearman])
def test_constant_input_is_an_error_not_nan(fn):
    with pytest.raises(ConstantInputError, match="all values of x are equal"):
        fn([3.0, 3.0, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ConstantInputError, match="all values of y are equal"):
        fn([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])


@pytest.mark.parametrize("x, y", [([1.0], [1.0]), ([1.0, 2.0], [1.0]),
                                  ([1.0, float("nan")], [1.0, 2.0]),
                                  ([1.0, 2.0], [1.0, float("inf")])])
def test_correlation_rejects_bad_input(x, y):
    with pytest.raises(ValueError):
        pearson(x, y)


def test_jsts_correlations_keys():
    result = metrics.jsts_correlations([1, 2, 3, 4], [2, 1, 4, 3])
    assert result == {"pearson": pytest.approx(0.6), "spearman": pytest.approx(0.6)}


# --- JSQuAD normalisation ----------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("小笠原諸島。", "小笠原諸島"),          # trailing 。 stripped
    ("小笠原諸島。。", "小笠原諸島"),        # every trailing 。
    ("小笠原諸島。 ", "小笠原諸島。"),       # 。 before a space is not trailing when stripped
    ("東京。タワー", "東京。タワー"),        # inner 。 kept
    ("  東京  \t タワー \n", "東京 タワー"),  # whitespace collapsed and trimmed
    ("東京\u3000タワー", "東京 タワー"),      # U+3000 is whitespace for str.split
    ("Debian GNU/Linux", "debian gnu/linux"),  # lower-case, punctuation kept
    ("The Beatles", "the beatles"),          # no article removal
    ("ＡＢＣ（１）", "ａｂｃ（１）"),        # no NFKC; full-width lowered
    ("「東京」、", "「東京」、"),            # no punctuation removal
    ("", ""),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_rules():
    assert exact_match("小笠原諸島。", "小笠原諸島") == 1
    assert exact_match("DEBIAN", "debian") == 1
    assert exact_match("出梅(しゅつばい)", "出梅（しゅつばい）") == 0  # no NFKC
    assert exact_match("16SrRNA系統解析", "16S rRNA系統解析") == 0    # space matters
    assert exact_match("16S  rRNA系統解析 ", "16S rRNA系統解析") == 1


def test_char_f1_hand_computed():
    # common 3 of pred 3 / gold 5: 2 * 1 * 0.6 / 1.6
    assert char_f1("小笠原", "小笠原諸島") == pytest.approx(0.75)
    # a repeated character counts once per occurrence in both: common 1, P 1/2, R 1
    assert char_f1("ああ", "あ") == pytest.approx(2 / 3)
    assert char_f1("東京", "大阪") == 0.0
    assert char_f1("東京。", "東京") == 1.0


def test_char_f1_a_space_is_a_character():
    # pred "1:30 - 5:00" has 11 characters (2 spaces), gold 9, all 9 in common:
    # P 9/11, R 1 -> 0.9
    assert char_f1("1:30 - 5:00", "1:30-5:00") == pytest.approx(0.9)
    assert char_f1("1:30  -  5:00", "1:30 - 5:00") == 1.0  # runs collapse to one space


def test_empty_prediction():
    assert char_f1("", "東京") == 0.0
    assert exact_match("", "東京") == 0
    assert char_f1("", "") == 1.0
    assert char_f1("。", " ") == 1.0  # both normalise to ""
    assert char_f1("東京", "") == 0.0


def test_jsquad_scores_max_over_golds_and_mean():
    golds = {
        "q1": ["小笠原諸島", "小笠原諸島を除く日本", "小笠原諸島"],
        "q2": ["小笠原諸島", "小笠原諸島を除く日本"],
        "q3": ["梅雨", "梅雨"],
        "q4": ["ＪＲ東日本", "JR東日本"],
    }
    preds = {"q1": "小笠原諸島を除く日本。", "q2": "小笠原", "q3": "", "q4": "jr東日本"}
    scores = jsquad_scores(preds, golds)
    # q1 EM 1 F1 1 (second gold); q2 EM 0 F1 max(0.75, 2*.3/1.3); q3 0/0; q4 EM 1 (case)
    assert scores["exact_match"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx((1 + 0.75 + 0 + 1) / 4)


def test_jsquad_golds_that_normalise_empty_become_the_empty_answer():
    # transformers' get_raw_scores: golds normalising to "" are dropped, none left -> [""]
    assert jsquad_scores({"q": ""}, {"q": ["。", " "]}) == {"exact_match": 1.0, "f1": 1.0}
    assert jsquad_scores({"q": "東京"}, {"q": ["。", "東京"]}) == {"exact_match": 1.0,
                                                                    "f1": 1.0}


def test_jsquad_scores_missing_or_unknown_predictions_are_errors():
    with pytest.raises(ValueError, match="1 missing"):
        jsquad_scores({"q1": "a"}, {"q1": ["a"], "q2": ["b"]})
    with pytest.raises(ValueError, match="1 unknown"):
        jsquad_scores({"q1": "a", "zz": "b"}, {"q1": ["a"]})
    with pytest.raises(ValueError):
        jsquad_scores({}, {})


# --- results table -----------------------------------------------------------------------

V3 = {"marc-ja": {"accuracy": 0.962}, "jsts": {"pearson": 0.919, "spearman": 0.881},
      "jnli": {"accuracy": 0.907}, "jsquad": {"exact_match": 0.880, "f1": 0.946},
      "jcommonsenseqa": {"accuracy": 0.848}}


def test_markdown_table_in_reference_layout():
    table = metrics.format_results_markdown({"bert-base-japanese-v3": V3})
    assert table == (
        "| model | MARC-ja acc | JSTS Pearson/Spearman | JNLI acc | JSQuAD EM/F1 "
        "| JCommonsenseQA acc |\n"
        "|---|---|---|---|---|---|\n"
        "| bert-base-japanese-v3 | 0.962 | 0.919/0.881 | 0.907 | 0.880/0.946 | 0.848 |\n")


def test_missing_tasks_and_metrics_show_a_dash():
    results = {"jsts": {"pearson": 0.91234, "spearman": 0.87}, "jsquad": {"f1": 0.9},
               "marc-ja": None}
    table = metrics.format_results_markdown({"ours": results})
    assert table.splitlines()[2] == "| ours | — | 0.912/0.870 | — | —/0.900 | — |"


def test_results_table_dict():
    results = dict(V3, jsts={"pearson": 0.919, "spearman": 0.881, "combined_score": 0.9})
    del results["marc-ja"]
    out = metrics.results_table(results, model="ours")
    assert out["model"] == "ours"
    assert list(out["metrics"]) == ["marc-ja", "jsts", "jnli", "jsquad", "jcommonsenseqa"]
    assert out["metrics"]["marc-ja"] is None
    assert out["metrics"]["jsts"]["combined_score"] == 0.9
    assert out["cells"] == {"MARC-ja acc": "—", "JSTS Pearson/Spearman": "0.919/0.881",
                            "JNLI acc": "0.907", "JSQuAD EM/F1": "0.880/0.946",
                            "JCommonsenseQA acc": "0.848"}


def test_results_table_rejects_unknown_task():
    with pytest.raises(ValueError, match="jcola"):
        metrics.results_table({"jcola": {"accuracy": 0.5}})
