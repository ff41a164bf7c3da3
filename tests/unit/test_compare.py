from math import comb

import pytest

from worker.training.compare import POOLED, binomial_tail, compare_groups, worse_beyond_chance


def test_binomial_tail_is_the_exact_fair_coin_tail() -> None:
    assert binomial_tail(0, 5) == pytest.approx(1.0)
    assert binomial_tail(5, 5) == pytest.approx(1 / 32)
    assert binomial_tail(8, 10) == pytest.approx((comb(10, 8) + comb(10, 9) + 1) / 1024)
    assert binomial_tail(0, 0) == 1.0  # no disagreements: no evidence either way


def test_only_disagreements_count_and_each_group_is_tested_apart() -> None:
    # group a: the candidate loses 6 rows and gains none; group b: it gains 1, loses 1
    groups = ["a"] * 10 + ["b"] * 4
    baseline = [True] * 8 + [False] * 2 + [True, False, True, True]
    candidate = [True, True] + [False] * 6 + [False] * 2 + [False, True, True, True]
    a, b, pooled = compare_groups(groups, baseline, candidate)
    assert (a.name, a.n, a.gains, a.losses) == ("a", 10, 0, 6)
    assert a.baseline_accuracy == pytest.approx(0.8) and a.candidate_accuracy == pytest.approx(0.2)
    assert a.p_worse == pytest.approx(1 / 64) and a.p_better == pytest.approx(1.0)
    assert (b.gains, b.losses, b.p_worse) == (1, 1, pytest.approx(0.75))
    assert pooled.name == POOLED and (pooled.n, pooled.gains, pooled.losses) == (14, 1, 7)
    assert pooled.p_worse == pytest.approx(9 / 256)
    # Bonferroni over three rows: a (1/64 = 0.016) fails at 0.05 / 3, not at 0.03 / 3; pooled (0.035) at neither
    assert worse_beyond_chance([a, b, pooled], 0.05) == ["a"]
    assert worse_beyond_chance([a, b, pooled], 0.03) == []
    assert worse_beyond_chance([a, b, pooled], 0.11) == ["a", POOLED]


def test_one_group_has_no_pooled_row() -> None:
    assert [c.name for c in compare_groups(["BR"] * 3, [True] * 3, [True] * 3)] == ["BR"]
