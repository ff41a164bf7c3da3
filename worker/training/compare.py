"""Two heads on the same rows, per group: is the candidate worse than the baseline beyond chance?

Two paired tests, one per metric the targets are written in:

- Accuracy, exact McNemar: only the rows where one head is right and the other wrong carry
  information. If the heads were equally good, each such row would be the baseline's with chance
  1/2; `p_worse` is the chance of the baseline winning at least as many of them as it did
  (`p_better`: the same for the candidate's).
- Macro-F1, approximate randomization (the paired permutation test used for F1 in NLP): F1 is not
  a sum over rows, so there is no closed form. If the heads were equally good, swapping their
  answers on any row would change nothing; the p-value is the share of random swaps whose macro-F1
  difference is at least as bad (or good) as the one observed. A head that lifts top-1 by answering
  the frequent categories more often (the starter with kernel votes on dev_BR: top-1 +1.3 points,
  macro-F1 -3.6; docs/training.md) passes the first test and fails this one.

A 99-sentence language moves by one point per sentence, so a raw drop says little on its own;
these say how often chance alone would produce it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import comb
from typing import Any

import numpy as np

from worker.training.metrics import batch_macro_f1, label_ids, macro_f1, top_label_right

POOLED = "(all)"
METRICS = ("accuracy", "macro_f1")
# 9,999 random swaps: the smallest p-value is 1e-4, well under alpha / tests for any usual
# number of groups; a fixed seed makes the gate give the same verdict on every run.
PERMUTATION_ROUNDS = 9_999
PERMUTATION_SEED = 0
_ROUNDS_PER_CHUNK = 500


@dataclass(frozen=True)
class GroupComparison:
    name: str
    n: int
    baseline_accuracy: float
    candidate_accuracy: float
    gains: int  # rows only the candidate gets right
    losses: int  # rows only the baseline gets right
    p_worse: float  # exact one-sided McNemar: P(losses or more | equally good heads)
    p_better: float  # the same for the gains
    baseline_macro_f1: float
    candidate_macro_f1: float
    p_worse_macro_f1: float  # approximate randomization: P(a difference this low | equally good heads)
    p_better_macro_f1: float

    def p_worse_on(self, metric: str) -> float:
        return self.p_worse if metric == "accuracy" else self.p_worse_macro_f1


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2)."""
    return sum(comb(n, i) for i in range(k, n + 1)) / 2**n if n else 1.0


def macro_f1_permutation_test(
    truth: Sequence[str],
    baseline: Sequence[str],
    candidate: Sequence[str],
    rounds: int = PERMUTATION_ROUNDS,
    seed: int = PERMUTATION_SEED,
) -> tuple[float, float]:
    """(p_worse, p_better) for the candidate's macro-F1 minus the baseline's, by approximate
    randomization: each round swaps the two heads' answers on a random half of the rows."""
    ids = label_ids(truth, baseline, candidate)
    gold, old, new = (np.array([ids[a] for a in answers], dtype=np.int64) for answers in (truth, baseline, candidate))
    observed = batch_macro_f1(np.stack([new, old]), gold, len(ids))
    difference = observed[0] - observed[1]
    as_low = as_high = 0
    rng = np.random.default_rng(seed)
    for start in range(0, rounds, _ROUNDS_PER_CHUNK):
        swap = rng.random((min(_ROUNDS_PER_CHUNK, rounds - start), len(gold))) < 0.5
        shuffled = batch_macro_f1(np.where(swap, old, new), gold, len(ids)) - batch_macro_f1(
            np.where(swap, new, old), gold, len(ids)
        )
        as_low += int(np.sum(shuffled <= difference + 1e-12))
        as_high += int(np.sum(shuffled >= difference - 1e-12))
    return (as_low + 1) / (rounds + 1), (as_high + 1) / (rounds + 1)


def compare_group(
    name: str, gold: Sequence[Sequence[str]], baseline: Sequence[str], candidate: Sequence[str]
) -> GroupComparison:
    """Both tests on one group's rows: gold label lists and each head's top label per row."""
    pairs = list(zip(top_label_right(baseline, gold), top_label_right(candidate, gold), strict=True))
    gains = sum(c and not b for b, c in pairs)
    losses = sum(b and not c for b, c in pairs)
    n = len(pairs)
    truth = [labels[0] for labels in gold]
    p_worse_f1, p_better_f1 = macro_f1_permutation_test(truth, baseline, candidate) if n else (1.0, 1.0)
    return GroupComparison(
        name,
        n,
        sum(b for b, _ in pairs) / n if n else 0.0,
        sum(c for _, c in pairs) / n if n else 0.0,
        gains,
        losses,
        binomial_tail(losses, gains + losses),
        binomial_tail(gains, gains + losses),
        macro_f1(baseline, gold),
        macro_f1(candidate, gold),
        p_worse_f1,
        p_better_f1,
    )


def compare_groups(
    groups: Sequence[str], gold: Sequence[Sequence[str]], baseline: Sequence[str], candidate: Sequence[str]
) -> list[GroupComparison]:
    """One comparison per group (sorted), then all rows pooled when there is more than one group."""
    rows: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        rows.setdefault(group, []).append(i)
    per_group = [
        compare_group(name, *([column[i] for i in rows[name]] for column in (gold, baseline, candidate)))
        for name in sorted(rows)
    ]
    if len(per_group) == 1:
        return per_group
    return [*per_group, compare_group(POOLED, gold, baseline, candidate)]


def worse_metrics(comparisons: Sequence[GroupComparison], alpha: float) -> dict[str, list[str]]:
    """Per group (and the pooled row), the metrics on which the candidate is worse at level `alpha`,
    Bonferroni-corrected over every test made (groups x metrics), so that more languages or more
    metrics do not mean more false alarms. Groups with none are left out."""
    level = alpha / (len(comparisons) * len(METRICS))
    found = {c.name: [m for m in METRICS if c.p_worse_on(m) < level] for c in comparisons}
    return {name: metrics for name, metrics in found.items() if metrics}


def as_json(baseline: str, candidate: str, comparisons: Sequence[GroupComparison], alpha: float) -> dict[str, Any]:
    worse = worse_metrics(comparisons, alpha)
    return {
        "baseline": baseline,
        "candidate": candidate,
        "alpha": alpha,
        "groups": {
            c.name: {
                "n": c.n,
                "baseline_accuracy": round(c.baseline_accuracy, 4),
                "candidate_accuracy": round(c.candidate_accuracy, 4),
                "gains": c.gains,
                "losses": c.losses,
                "p_worse": round(c.p_worse, 4),
                "p_better": round(c.p_better, 4),
                "baseline_macro_f1": round(c.baseline_macro_f1, 4),
                "candidate_macro_f1": round(c.candidate_macro_f1, 4),
                "p_worse_macro_f1": round(c.p_worse_macro_f1, 4),
                "p_better_macro_f1": round(c.p_better_macro_f1, 4),
            }
            for c in comparisons
        },
        "worse": list(worse),
        "worse_on": worse,
    }


def as_table(comparisons: Sequence[GroupComparison]) -> str:
    lines = [
        "| group | n | accuracy | change | only candidate right | only baseline right | p (worse) | p (better) "
        "| macro-F1 | change | p (worse) | p (better) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {c.name} | {c.n} | {c.baseline_accuracy:.3f} -> {c.candidate_accuracy:.3f} | "
        f"{c.candidate_accuracy - c.baseline_accuracy:+.3f} | {c.gains} | {c.losses} | "
        f"{c.p_worse:.3f} | {c.p_better:.3f} | {c.baseline_macro_f1:.3f} -> {c.candidate_macro_f1:.3f} | "
        f"{c.candidate_macro_f1 - c.baseline_macro_f1:+.3f} | {c.p_worse_macro_f1:.4f} | {c.p_better_macro_f1:.4f} |"
        for c in comparisons
    ]
    return "\n".join(lines)
