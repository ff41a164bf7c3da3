"""Category drift: per language, the recent predictions' distribution against the training prior.

For each language, `CategoryDrift` keeps the top labels of the last `window`
predictions and compares their distribution with the training prior by the
Jensen-Shannon divergence in bits. JSD is symmetric, bounded in [0, 1] and finite when
either side has zero mass (a category never predicted, or one the prior never saw), which
KL is not. With K categories and N predictions drawn from the prior itself the expected
value is about (K - 1) / (8 N ln 2): ~0.003 for K=15, N=1000, so a sustained 0.05 is a
real shift, not sampling noise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np


def jensen_shannon_bits(p: np.ndarray, q: np.ndarray) -> float:
    """JSD(p || q) in bits, in [0, 1]; both arguments are normalised here."""
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl_to_m(x: np.ndarray) -> float:
        mask = x > 0  # 0 * log 0 = 0; m > 0 wherever x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / m[mask])))

    return max(0.0, 0.5 * kl_to_m(p) + 0.5 * kl_to_m(q))


class CategoryDrift:
    """Per-language rolling distribution of predicted categories against a prior.

    Labels outside the prior go to one extra slot of prior mass 0, so a model/prior
    mismatch shows up as drift instead of vanishing.
    """

    def __init__(
        self, labels: Sequence[str], prior: Sequence[float], window: int = 1000, min_samples: int = 100
    ):
        if len(labels) != len(prior) or not labels:
            raise ValueError("labels and prior must be non-empty and of the same length")
        prior_arr = np.asarray(prior, dtype=np.float64)
        if np.any(prior_arr < 0) or prior_arr.sum() <= 0:
            raise ValueError("prior must be non-negative with a positive sum")
        if not 0 < min_samples <= window:
            raise ValueError("need 0 < min_samples <= window")
        self._index = {label: i for i, label in enumerate(labels)}
        self._prior = np.append(prior_arr / prior_arr.sum(), 0.0)
        self._window = window
        self._min_samples = min_samples
        self._recent: dict[str, deque[int]] = {}
        self._counts: dict[str, np.ndarray] = {}

    def observe(self, language: str, label: str) -> None:
        recent = self._recent.setdefault(language, deque())
        counts = self._counts.setdefault(language, np.zeros(len(self._prior), dtype=np.int64))
        slot = self._index.get(label, len(self._prior) - 1)
        if len(recent) == self._window:
            counts[recent.popleft()] -= 1
        recent.append(slot)
        counts[slot] += 1

    def samples(self, language: str) -> int:
        return len(self._recent.get(language, ()))

    def distribution(self, language: str) -> np.ndarray | None:
        """The share of each prior label (plus the trailing unknown slot) in the window."""
        counts = self._counts.get(language)
        if counts is None or counts.sum() == 0:
            return None
        return counts / counts.sum()

    def divergence(self, language: str) -> float | None:
        """JSD in bits against the prior; None until `min_samples` predictions were seen."""
        if self.samples(language) < self._min_samples:
            return None
        return jensen_shannon_bits(self._counts[language].astype(np.float64), self._prior)

    def languages(self) -> list[str]:
        return list(self._recent)
