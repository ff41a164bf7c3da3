import random
from math import comb

import numpy as np
import pytest

from worker.training.compare import (
    POOLED,
    binomial_tail,
    compare_groups,
    macro_f1_permutation_test,
    worse_metrics,
)
from worker.training.metrics import batch_macro_f1, macro_f1


def answers(right: list[bool]) -> list[str]:
    """Top labels for rows whose gold label is "x": right rows answer "x", the others "y"."""
    return ["x" if r else "y" for r in right]


def test_binomial_tail_is_the_exact_fair_coin_tail() -> None:
    assert binomial_tail(0, 5) == pytest.approx(1.0)
    assert binomial_tail(5, 5) == pytest.approx(1 / 32)
    assert binomial_tail(8, 10) == pytest.approx((comb(10, 8) + comb(10, 9) + 1) / 1024)
    assert binomial_tail(0, 0) == 1.0  # no disagreements: no evidence either way


def test_only_disagreements_count_and_each_group_is_tested_apart() -> None:
    # group a: the candidate loses 6 rows and gains none; group b: it gains 1, loses 1
    groups = ["a"] * 10 + ["b"] * 4
    gold = [["x"]] * 14
    baseline = answers([True] * 8 + [False] * 2 + [True, False, True, True])
    candidate = answers([True, True] + [False] * 6 + [False] * 2 + [False, True, True, True])
    a, b, pooled = compare_groups(groups, gold, baseline, candidate)
    assert (a.name, a.n, a.gains, a.losses) == ("a", 10, 0, 6)
    assert a.baseline_accuracy == pytest.approx(0.8) and a.candidate_accuracy == pytest.approx(0.2)
    assert a.p_worse == pytest.approx(1 / 64) and a.p_better == pytest.approx(1.0)
    assert (b.gains, b.losses, b.p_worse) == (1, 1, pytest.approx(0.75))
    assert pooled.name == POOLED and (pooled.n, pooled.gains, pooled.losses) == (14, 1, 7)
    assert pooled.p_worse == pytest.approx(9 / 256)
    # Bonferroni over three rows and two metrics: a (1/64 = 0.016) fails at 0.1 / 6, not at 0.05 / 6
    assert worse_metrics([a, b, pooled], 0.1)["a"] == ["accuracy"]
    assert "a" not in worse_metrics([a, b, pooled], 0.05)


def f1_by_counting(predicted: list[str], truth: list[str]) -> float:
    """Macro-F1 written out label by label: mean F1 over the labels in the gold or the predictions."""
    scores = []
    for label in set(truth) | set(predicted):
        tp = sum(p == label == t for p, t in zip(predicted, truth, strict=True))
        fp = sum(p == label != t for p, t in zip(predicted, truth, strict=True))
        fn = sum(t == label != p for p, t in zip(predicted, truth, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def test_macro_f1_counts_each_label_and_scores_many_answer_rows_at_once() -> None:
    rng = random.Random(3)
    labels = ["a", "b", "c", "d", "e"]
    ids = {label: i for i, label in enumerate(labels)}
    for _ in range(20):
        truth = [rng.choice(labels[:3]) for _ in range(40)]
        rows = [[rng.choice(labels) for _ in range(40)] for _ in range(3)]  # "d", "e": predicted, never gold
        expected = [f1_by_counting(predicted, truth) for predicted in rows]
        assert [macro_f1(predicted, [[t] for t in truth]) for predicted in rows] == pytest.approx(expected)
        batch = batch_macro_f1(np.array([[ids[p] for p in row] for row in rows]), np.array([ids[t] for t in truth]), 5)
        assert list(batch) == pytest.approx(expected)
    assert macro_f1([], []) == 0.0


def test_a_head_that_answers_the_frequent_class_more_fails_on_macro_f1_alone() -> None:
    """Equal accuracy, but the candidate trades rare-class rows for frequent-class ones."""
    truth = (["a"] * 60 + ["b"] * 20 + ["c"] * 20) * 6
    baseline = (["a"] * 40 + ["b"] * 10 + ["c"] * 10 + ["b"] * 18 + ["a"] * 2 + ["c"] * 18 + ["a"] * 2) * 6
    candidate = (["a"] * 60 + ["b"] * 8 + ["a"] * 12 + ["c"] * 8 + ["a"] * 12) * 6
    (group,) = compare_groups(["BR"] * 600, [[t] for t in truth], baseline, candidate)
    assert group.baseline_accuracy == group.candidate_accuracy == pytest.approx(0.76)
    assert group.p_worse > 0.5 and group.p_better > 0.5
    assert group.candidate_macro_f1 < group.baseline_macro_f1 - 0.09
    assert group.p_worse_macro_f1 < 0.001 and group.p_better_macro_f1 > 0.99
    assert worse_metrics([group], 0.05) == {"BR": ["macro_f1"]}
    (reverse,) = compare_groups(["BR"] * 600, [[t] for t in truth], candidate, baseline)
    assert reverse.p_better_macro_f1 < 0.001 and worse_metrics([reverse], 0.05) == {}


def test_equal_heads_are_never_worse_and_the_test_is_deterministic() -> None:
    truth = ["a", "b", "a", "c", "b", "a"] * 5
    same = ["a", "a", "a", "c", "b", "b"] * 5
    assert macro_f1_permutation_test(truth, same, same) == (1.0, 1.0)
    other = ["a", "b", "b", "c", "b", "a"] * 5
    assert macro_f1_permutation_test(truth, same, other) == macro_f1_permutation_test(truth, same, other)


def test_one_group_has_no_pooled_row() -> None:
    assert [c.name for c in compare_groups(["BR"] * 3, [["x"]] * 3, ["x"] * 3, ["x"] * 3)] == ["BR"]
