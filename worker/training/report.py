"""Evaluation results per group (language or region), as JSON, text, and a Markdown/PNG report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from worker.training.metrics import (
    accuracy,
    accuracy_interval,
    calibration_error,
    confusion,
    macro_f1,
    majority,
    top_label_right,
)


@dataclass(frozen=True)
class GroupResult:
    name: str
    n: int
    accuracy: float
    macro_f1: float
    majority: float
    confusion: np.ndarray  # rows = gold, columns = predicted, over the model's labels
    # Served confidence (calibrated chance the top label is right): its mean and calibration error;
    # None where no confidences were given.
    confidence: float | None = None
    calibration_error: float | None = None


def score_groups(
    groups: Sequence[str],
    predicted: Sequence[str],
    gold: Sequence[Sequence[str]],
    labels: Sequence[str],
    confidences: Sequence[float] | None = None,
) -> list[GroupResult]:
    results = []
    for name in sorted(set(groups)):
        rows = [i for i, g in enumerate(groups) if g == name]
        p, t = [predicted[i] for i in rows], [gold[i] for i in rows]
        result = GroupResult(name, len(rows), accuracy(p, t), macro_f1(p, t), majority(t), confusion(p, t, labels))
        if confidences is not None:
            c = [float(confidences[i]) for i in rows]
            right = top_label_right(p, t)
            result = replace(result, confidence=float(np.mean(c)), calibration_error=calibration_error(c, right))
        results.append(result)
    return results


def group_means(results: Sequence[GroupResult]) -> tuple[float, float]:
    """(accuracy, macro-F1), each the unweighted mean over the groups."""
    if not results:
        return 0.0, 0.0
    return float(np.mean([r.accuracy for r in results])), float(np.mean([r.macro_f1 for r in results]))


def as_json(model_version: str, results: Sequence[GroupResult]) -> dict[str, Any]:
    mean_accuracy, mean_f1 = group_means(results)
    return {
        "model_version": model_version,
        "groups": {
            r.name: {
                "n": r.n,
                "accuracy": round(r.accuracy, 4),
                "macro_f1": round(r.macro_f1, 4),
                "majority": round(r.majority, 4),
            }
            for r in results
        },
        "mean_accuracy": round(mean_accuracy, 4),
        "mean_macro_f1": round(mean_f1, 4),
    }


def as_table(results: Sequence[GroupResult]) -> str:
    """One row per group; with confidences, also their mean and calibration error (10 bins)."""
    calibrated = all(r.confidence is not None for r in results)
    head = "| group | n | accuracy | 95% interval | macro-F1 | majority |"
    head += " confidence | calibration error |" if calibrated else ""
    lines = [head, "|---|" + "---:|" * (head.count("|") - 2)]
    for r in results:
        low, high = accuracy_interval(r.accuracy, r.n)
        row = f"| {r.name} | {r.n} | {r.accuracy:.3f} | {low:.3f}-{high:.3f} | {r.macro_f1:.3f} | {r.majority:.3f} |"
        lines.append(row + (f" {r.confidence:.3f} | {r.calibration_error:.3f} |" if calibrated else ""))
    return "\n".join(lines)


def pooled_accuracy(results: Sequence[GroupResult]) -> tuple[float, int]:
    """(accuracy, rows) of every group's rows taken as one group: the mean accuracy when the groups are the
    same size (the SIB-200 dev sets), otherwise weighted by their rows."""
    n = sum(r.n for r in results)
    return (sum(r.accuracy * r.n for r in results) / n if n else 0.0), n


def means_lines(results: Sequence[GroupResult]) -> tuple[str, str]:
    """The means of --json (unweighted over the groups), and the pooled accuracy with its 95% interval: the mean
    of a few groups' accuracies has no Wilson interval of its own, the rows pooled do."""
    accuracy, n = pooled_accuracy(results)
    low, high = accuracy_interval(accuracy, n)
    mean_accuracy, mean_f1 = group_means(results)
    groups = f"{len(results)} group" + ("s" if len(results) != 1 else "")
    return (f"mean accuracy {mean_accuracy:.3f}  mean macro-F1 {mean_f1:.3f}  (unweighted means over {groups})",
            f"pooled over all {n} rows: accuracy {accuracy:.3f}  95% interval {low:.3f}-{high:.3f}")


def confusion_table(matrix: np.ndarray, labels: Sequence[str]) -> str:
    used = [i for i in range(len(labels)) if matrix[i].sum() or matrix[:, i].sum()]
    head = "| gold \\ predicted | " + " | ".join(labels[i] for i in used) + " |"
    rule = "|---|" + "---:|" * len(used)
    rows = [f"| {labels[i]} | " + " | ".join(str(matrix[i, j]) for j in used) + " |" for i in used]
    return "\n".join([head, rule, *rows])


def bar_chart(results: Sequence[GroupResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in results]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(names) + 2), 3.5))
    intervals = np.array([accuracy_interval(r.accuracy, r.n) for r in results]).reshape(-1, 2)
    below_above = np.abs(intervals.T - [r.accuracy for r in results])
    ax.bar(x - 0.2, [r.accuracy for r in results], 0.4, yerr=below_above, capsize=3, label="accuracy (95% interval)")
    ax.bar(x + 0.2, [r.majority for r in results], 0.4, label="majority baseline", color="lightgray")
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1)
    ax.set_ylabel("top-1 accuracy")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(
    folder: Path, summary: dict[str, Any], results: Sequence[GroupResult], labels: Sequence[str]
) -> Path:
    """report.md (table + confusion matrices) and accuracy.png in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    bar_chart(results, folder / "accuracy.png")
    total = sum((r.confusion for r in results), np.zeros((len(labels), len(labels)), dtype=np.int64))
    parts = [
        f"# Evaluation of {summary['model_version']}",
        as_table(results),
        *(line[:1].upper() + line[1:] for line in means_lines(results)),
        "![accuracy per group](accuracy.png)",
        "## Confusion matrix (all groups)",
        confusion_table(total, labels),
    ]
    for r in results:
        parts += [f"## Confusion matrix: {r.name}", confusion_table(r.confusion, labels)]
    path = folder / "report.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path
