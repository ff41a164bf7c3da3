"""Two heads on the same rows, per group: is the candidate worse than the baseline beyond chance?

Both heads score the same rows, so the test is paired (exact McNemar): only the rows where one head
is right and the other wrong carry information. If the heads were equally good, each such row would
be the baseline's with chance 1/2; `p_worse` is the chance of the baseline winning at least as many
of them as it did (`p_better`: the same for the candidate's). A 99-sentence language moves by one
point per sentence, so a raw accuracy drop says little on its own; this says how often chance alone
would produce it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import comb
from typing import Any

POOLED = "(all)"


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


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2)."""
    return sum(comb(n, i) for i in range(k, n + 1)) / 2**n if n else 1.0


def compare_group(name: str, baseline_right: Sequence[bool], candidate_right: Sequence[bool]) -> GroupComparison:
    pairs = list(zip(baseline_right, candidate_right, strict=True))
    gains = sum(c and not b for b, c in pairs)
    losses = sum(b and not c for b, c in pairs)
    n = len(pairs)
    return GroupComparison(
        name,
        n,
        sum(baseline_right) / n if n else 0.0,
        sum(candidate_right) / n if n else 0.0,
        gains,
        losses,
        binomial_tail(losses, gains + losses),
        binomial_tail(gains, gains + losses),
    )


def compare_groups(
    groups: Sequence[str], baseline_right: Sequence[bool], candidate_right: Sequence[bool]
) -> list[GroupComparison]:
    """One comparison per group (sorted), then all rows pooled when there is more than one group."""
    rows: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        rows.setdefault(group, []).append(i)
    per_group = [
        compare_group(name, [baseline_right[i] for i in rows[name]], [candidate_right[i] for i in rows[name]])
        for name in sorted(rows)
    ]
    if len(per_group) == 1:
        return per_group
    return [*per_group, compare_group(POOLED, baseline_right, candidate_right)]


def worse_beyond_chance(comparisons: Sequence[GroupComparison], alpha: float) -> list[str]:
    """The groups (and the pooled row) where the candidate is worse at level `alpha`, Bonferroni-corrected
    over the rows tested, so that more languages do not mean more false alarms."""
    return [c.name for c in comparisons if c.p_worse < alpha / len(comparisons)]


def as_json(baseline: str, candidate: str, comparisons: Sequence[GroupComparison], alpha: float) -> dict[str, Any]:
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
            }
            for c in comparisons
        },
        "worse": worse_beyond_chance(comparisons, alpha),
    }


def as_table(comparisons: Sequence[GroupComparison]) -> str:
    lines = [
        "| group | n | baseline | candidate | change | only candidate right | only baseline right "
        "| p (worse) | p (better) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {c.name} | {c.n} | {c.baseline_accuracy:.3f} | {c.candidate_accuracy:.3f} | "
        f"{c.candidate_accuracy - c.baseline_accuracy:+.3f} | {c.gains} | {c.losses} | "
        f"{c.p_worse:.3f} | {c.p_better:.3f} |"
        for c in comparisons
    ]
    return "\n".join(lines)
