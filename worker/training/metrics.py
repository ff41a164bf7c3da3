"""Top-1 accuracy, macro-F1, the majority baseline, confusion matrices; threshold and confidence calibration."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from worker.classify import CONFIDENCE_KEYS, confidence_features

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)
DEFAULT_THRESHOLD = 0.5
# A threshold fitted on fewer dev rows of its class is noise: the starter's "Nonprofits & Activism",
# calibrated on its one dev video to 0.05, joined 15% of dev_BR's category lists (right in 2 of 198).
MIN_CALIBRATION_POSITIVES = 5


def top_label_right(predicted: Sequence[str], gold: Sequence[Sequence[str]]) -> list[bool]:
    """Per row: is its top label one of its gold labels?"""
    return [p in g for p, g in zip(predicted, gold, strict=True)]


def accuracy(predicted: Sequence[str], gold: Sequence[Sequence[str]]) -> float:
    """Share of rows whose top label is one of the gold labels."""
    return float(np.mean(top_label_right(predicted, gold))) if gold else 0.0


def accuracy_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of an accuracy measured on `n` rows: how far a group's figure may be
    from the head's true accuracy on such rows (about +-7 points at n = 200, +-1.8 at 2,000)."""
    if n == 0:
        return 0.0, 1.0
    scale = 1 + z * z / n
    centre = (accuracy + z * z / (2 * n)) / scale
    half = z * np.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / scale
    return float(centre - half), float(centre + half)


def macro_f1(predicted: Sequence[str], gold: Sequence[Sequence[str]]) -> float:
    """Mean F1 over the labels seen in the gold or the predictions (top-1 vs first gold label)."""
    truth = [g[0] for g in gold]
    if not truth:
        return 0.0
    ids = label_ids(truth, predicted)
    answers = np.array([[ids[p] for p in predicted]], dtype=np.int64)
    return float(batch_macro_f1(answers, np.array([ids[t] for t in truth], dtype=np.int64), len(ids))[0])


def label_ids(*answers: Sequence[str]) -> dict[str, int]:
    """Every label in these answer lists -> an id (in sorted order), for the array form of the metrics."""
    return {label: i for i, label in enumerate(sorted({a for column in answers for a in column}))}


def batch_macro_f1(predicted: np.ndarray, truth: np.ndarray, n_labels: int) -> np.ndarray:
    """`macro_f1` of each row of `predicted` (int [R, n] label ids) against `truth` (int [n]) at once:
    mean F1 over the labels in the gold or in that row's predictions."""
    rounds = predicted.shape[0]
    slots = predicted + np.arange(rounds)[:, None] * n_labels  # (round, label) -> one bin
    predicted_count = np.bincount(slots.ravel(), minlength=rounds * n_labels).reshape(rounds, n_labels)
    true_positive = np.bincount(slots[predicted == truth], minlength=rounds * n_labels).reshape(rounds, n_labels)
    support = predicted_count + np.bincount(truth, minlength=n_labels)
    f1 = 2 * true_positive / np.maximum(support, 1)
    return f1.sum(axis=1) / (support > 0).sum(axis=1)


def majority(gold: Sequence[Sequence[str]]) -> float:
    """Accuracy of always answering the group's most frequent label."""
    if not gold:
        return 0.0
    return Counter(g[0] for g in gold).most_common(1)[0][1] / len(gold)


def calibration_error(confidences: Sequence[float], right: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: over equal-width confidence bins, the row-weighted mean of
    |mean confidence - accuracy|. 0 when a confidence of p is right p of the time."""
    conf, hit = np.asarray(confidences, dtype=np.float64), np.asarray(right, dtype=np.float64)
    if not len(conf):
        return 0.0
    which = np.minimum((conf * bins).astype(int), bins - 1)
    gaps = [abs(conf[which == b].mean() - hit[which == b].mean()) * np.sum(which == b) for b in np.unique(which)]
    return float(np.sum(gaps) / len(conf))


def confusion(predicted: Sequence[str], gold: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """int [L, L]: rows = first gold label, columns = predicted label (gold labels unknown to the model dropped)."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for p, g in zip(predicted, gold, strict=True):
        if g[0] in index and p in index:
            matrix[index[g[0]], index[p]] += 1
    return matrix


def calibrate_thresholds(
    probabilities: np.ndarray, y: np.ndarray, min_positives: int = MIN_CALIBRATION_POSITIVES
) -> np.ndarray:
    """Per class, the grid threshold with the best dev F1 (ties: the highest).

    A class with fewer than `min_positives` dev rows, or one no threshold gets right (F1 = 0
    everywhere), takes the threshold with the best F1 over every class's dev scores at once: the
    head's own scale. A fixed 0.5 is not on it: the starter's calibrated thresholds are 0.85-0.95,
    and at 0.5 its rare "Travel & Events" joined 35 of dev_BR's category lists, 3 of them rightly.
    0.5 only where dev has no positive row at all.
    """
    pooled = _best_threshold(probabilities.ravel(), y.ravel() > 0.5)
    thresholds = np.full(y.shape[1], DEFAULT_THRESHOLD if pooled is None else pooled, dtype=np.float32)
    for c in range(y.shape[1]):
        positives = y[:, c] > 0.5
        if positives.sum() >= max(1, min_positives):
            best = _best_threshold(probabilities[:, c], positives)
            thresholds[c] = thresholds[c] if best is None else best
    return thresholds


def _best_threshold(scores: np.ndarray, positives: np.ndarray) -> float | None:
    """The grid threshold with the best F1 of `scores >= t` against `positives` (ties: the highest);
    None when no threshold gets a positive right."""
    best_f1, best = 0.0, None
    for t in THRESHOLD_GRID:
        chosen = scores >= t
        f1 = 2 * np.sum(chosen & positives) / (chosen.sum() + positives.sum())
        if f1 > 0 and f1 >= best_f1:
            best_f1, best = f1, float(t)
    return best


def calibrate_confidence(logits: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> dict[str, float] | None:
    """Platt scaling of P(the top label is right) on the dev rows' top logit and margin.

    A head's sigmoid scores are not that chance: the starter's softmax-trained logits put every
    dev_BR top score over 0.7 while 40% of its top labels are wrong. This is a logistic regression
    of "the top label is right" on `confidence_features`, by Newton's method from zeros (deterministic).
    None when dev has no right or no wrong top label: nothing to calibrate on.
    """
    features = confidence_features(logits).astype(np.float64)
    right = (y[np.arange(len(y)), logits.argmax(axis=1)] > 0.5).astype(np.float64)
    if right.min() == right.max():
        return None
    weights = np.zeros(features.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-features @ weights))
        gradient = features.T @ (p - right) + l2 * weights
        hessian = (features * (p * (1 - p))[:, None]).T @ features + l2 * np.eye(len(weights))
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-8:
            break
    return {key: round(float(w), 6) for key, w in zip(CONFIDENCE_KEYS, weights, strict=True)}
