"""Scoring a head: class weights, per-class thresholds and confidence calibrated on dev, accuracy and its
interval, macro-F1, the majority baseline, calibration error, the per-group report."""

from __future__ import annotations

import numpy as np
import pytest

from worker.classify import confidence_features
from worker.training.head import one_hot, sample_weights
from worker.training.metrics import (
    accuracy,
    accuracy_interval,
    calibrate_confidence,
    calibrate_thresholds,
    calibration_error,
    confusion,
    macro_f1,
    majority,
)
from worker.training.report import as_table, means_lines, score_groups


def test_class_weights_favour_rare_labels() -> None:
    y = one_hot([["A"]] * 8 + [["B"]] * 2, ["A", "B"])
    balanced = sample_weights(y, 1.0)
    assert balanced.mean() == pytest.approx(1.0)
    assert balanced[-1] / balanced[0] == pytest.approx(4.0)
    assert np.allclose(sample_weights(y, 0.0), 1.0)


def test_thresholds_maximise_dev_f1() -> None:
    probabilities = np.array(
        [[0.9, 0.2, 0.9], [0.7, 0.3, 0.9], [0.35, 0.1, 0.0], [0.2, 0.05, 0.9]], dtype=np.float32
    )
    y = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=np.float32)
    thresholds = calibrate_thresholds(probabilities, y, min_positives=1)
    assert 0.35 < thresholds[0] <= 0.7  # separates the two positives from the rest
    # Over all twelve scores at once the best F1 (2 of 3 positives among 5 chosen) is in the same
    # interval, highest grid point first: the class with no dev positive, and the one no threshold
    # gets right, take that, not 0.5 or 0.95.
    assert thresholds[1] == thresholds[2] == thresholds[0]


def test_thresholds_need_enough_dev_rows_of_their_class() -> None:
    """One dev row of a class would set its threshold to that row's score (0.05 here): it takes the
    threshold fitted on every class's scores at once instead."""
    probabilities = np.array([[0.06, 0.9]] + [[0.01, 0.8]] * 5 + [[0.01, 0.1]] * 5, dtype=np.float32)
    y = np.array([[1, 0]] + [[0, 1]] * 5 + [[0, 0]] * 5, dtype=np.float32)
    assert calibrate_thresholds(probabilities, y, min_positives=1)[0] == pytest.approx(0.05)
    thresholds = calibrate_thresholds(probabilities, y)
    assert 0.1 < thresholds[1] <= 0.8  # five rows: calibrated
    assert thresholds[0] == pytest.approx(0.8)  # pooled: the five 0.8s right, one 0.06 missed


def test_the_rare_class_threshold_follows_the_head_s_scale() -> None:
    """A head whose scores all sit high (the starter's: thresholds 0.85-0.95) gives its rare class a
    high threshold too; 0.5 would list it on every row. 0.5 only when dev has no positive at all."""
    probabilities = np.array([[0.97, 0.9, 0.6]] * 6 + [[0.9, 0.97, 0.6]] * 6, dtype=np.float32)
    y = np.array([[1, 0, 0]] * 6 + [[0, 1, 0]] * 6, dtype=np.float32)
    thresholds = calibrate_thresholds(probabilities, y)
    assert thresholds[0] == thresholds[1] == thresholds[2] == pytest.approx(0.95)
    assert np.all(calibrate_thresholds(probabilities, np.zeros_like(y)) == pytest.approx(0.5))


def test_confidence_is_calibrated_on_dev_and_grows_with_the_margin() -> None:
    """Rows whose top label wins by more are right more often: the fitted chance follows, on average
    equal to dev's accuracy, whatever the logits' scale (all top logits here are far past sigmoid's 0.99)."""
    rng = np.random.default_rng(0)
    margins = rng.uniform(0, 4, 2000)
    logits = np.stack([np.full(2000, 8.0), 8.0 - margins], axis=1).astype(np.float32)
    right = rng.random(2000) < 1 / (1 + np.exp(-(2 * margins - 3)))  # the top label (0) is right this often
    y = np.stack([right, ~right], axis=1).astype(np.float32)
    fitted = calibrate_confidence(logits, y)
    assert fitted is not None and fitted["margin"] == pytest.approx(2.0, abs=0.3)
    weights = np.array([fitted["top_logit"], fitted["margin"], fitted["bias"]], dtype=np.float32)
    chance = 1 / (1 + np.exp(-(confidence_features(logits) @ weights)))
    assert chance.mean() == pytest.approx(right.mean(), abs=0.01)
    assert calibrate_confidence(logits, np.stack([np.ones(2000), np.zeros(2000)], axis=1)) is None  # all right


def test_metrics() -> None:
    gold = [("A",), ("A",), ("B",), ("C", "A")]
    predicted = ["A", "B", "B", "A"]
    assert accuracy(predicted, gold) == pytest.approx(0.75)  # a multi-label row is right on any gold label
    # F1 per label against the first gold label: A tp1 fp1 fn1, B tp1 fp1 fn0, C never predicted
    f1_a = 2 * 1 / (2 * 1 + 1 + 1)
    f1_b = 2 * 1 / (2 * 1 + 1 + 0)
    assert macro_f1(predicted, gold) == pytest.approx((f1_a + f1_b + 0.0) / 3)
    assert majority(gold) == pytest.approx(0.5)
    assert confusion(predicted, gold, ["A", "B", "C"]).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_calibration_error_is_zero_when_confidence_matches_accuracy_and_weighs_bins_by_rows() -> None:
    assert calibration_error([0.75] * 4, [True, True, True, False]) == pytest.approx(0.0)
    # bin 0.9: 3 rows at 0.95, one right (gap 0.95 - 1/3); bin 0.2: 1 row at 0.25, right (gap 0.75)
    expected = (3 * (0.95 - 1 / 3) + 1 * 0.75) / 4
    assert calibration_error([0.95, 0.95, 0.95, 0.25], [True, False, False, True]) == pytest.approx(expected)
    assert calibration_error([1.0], [True]) == pytest.approx(0.0)  # 1.0 falls in the last bin
    assert calibration_error([], []) == 0.0


def test_groups_report_confidence_and_calibration_only_when_given() -> None:
    groups, predicted, gold = ["x", "x", "y"], ["A", "B", "A"], [("A",), ("A",), ("A",)]
    plain = score_groups(groups, predicted, gold, ["A", "B"])
    assert plain[0].confidence is None and "calibration error" not in as_table(plain)
    scored = score_groups(groups, predicted, gold, ["A", "B"], [0.9, 0.5, 0.6])
    assert [r.confidence for r in scored] == pytest.approx([0.7, 0.6])
    assert scored[0].calibration_error == pytest.approx((0.1 + 0.5) / 2)  # one row per bin, gaps 0.1 and 0.5
    table = as_table(scored).splitlines()
    assert table[0].endswith("| confidence | calibration error |") and table[1].count("|") == table[0].count("|")
    assert table[2] == "| x | 2 | 0.500 | 0.095-0.905 | 0.333 | 1.000 | 0.700 | 0.300 |"


def test_accuracy_interval_is_wilsons() -> None:
    assert accuracy_interval(0.8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # the textbook example
    # 81 of 99 (arb_Arab on the SIB-200 head): (k + z²/2 ± z·sqrt(k(n-k)/n + z²/4)) / (n + z²), z² = 3.8416:
    # k(n-k)/n = 81·18/99 = 14.7273, + 0.9604 -> sqrt 3.9608, · 1.96 = 7.7631; (81 + 1.9208 ∓ 7.7631) / 102.8416
    assert accuracy_interval(81 / 99, 99) == pytest.approx((0.7308, 0.8818), abs=1e-4)
    low, high = accuracy_interval(0.8485, 396)  # the SIB-200 zero-shot mean's pooled rows
    assert low < 0.8485 < high and high - low == pytest.approx(0.07, abs=0.005)
    assert accuracy_interval(1.0, 99)[1] == pytest.approx(1.0) and accuracy_interval(0.5, 0) == (0.0, 1.0)


def test_the_means_come_with_the_pooled_rows_accuracy_and_its_interval() -> None:
    """The --json means are unweighted over the groups; the interval is the pooled rows' (Wilson), and the
    line says which: here 81 of 99 right in one group and 1 of 1 in the other."""
    groups, predicted = ["a"] * 99 + ["b"], ["A"] * 81 + ["B"] * 18 + ["A"]
    results = score_groups(groups, predicted, [("A",)] * 100, ["A", "B"])
    means, pooled = means_lines(results)
    assert means.startswith("mean accuracy 0.909  mean macro-F1 ")
    assert means.endswith("(unweighted means over 2 groups)")
    # 82 of 100: k(n-k)/n = 14.76, + 0.9604 -> sqrt 3.9649, · 1.96 = 7.7712; (82 + 1.9208 ∓ 7.7712) / 103.8416
    assert pooled == "pooled over all 100 rows: accuracy 0.820  95% interval 0.733-0.883"
