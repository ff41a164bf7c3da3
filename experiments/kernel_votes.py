"""Kernel votes (`train --kernel-weight/--kernel-threshold`): the fourth sweep of docs/experiments.md.

A head's logits plus `beta * sum_i y_i * relu(x . x_i - theta)` over the training rows, for a grid
of theta and beta, as gains in points over the head alone. The base heads are fitted once per
setting and the votes added to their logits (the kernel part is additive):
- YouTube, linear head (the starter's recipe, train.jsonl whole as with --refit), top-1 and
  macro-F1: train -> dev_BR, and two checks that never touch dev_BR: US + GB -> FR, FR -> US + GB;
- SIB-200, the shipped recipe (MLP hidden 256, smoothing 0.1, + 0.25 linear; 3 seeds), top-1:
  eng + fra -> the four zero-shot languages, and the checks eng -> fra dev, fra -> eng dev.

    .venv/bin/python experiments/kernel_votes.py [--data ../shared/data]

Embeddings come from the training embedding cache (.cache/embeddings).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker.training.data import Example, read_sib_split, read_videos
from worker.training.head import HyperParameters, fit_head, one_hot, served_logits
from worker.training.linear import fit_linear
from worker.training.metrics import accuracy, macro_f1
from worker.training.pipeline import _cache

THETAS, BETAS = (0.25, 0.3, 0.35), (1, 2, 3, 5, 10)
Check = tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, list]]]  # train x, y, tests
Metric = Callable[[list[str], list], float]


def gains(name: str, labels: tuple[str, ...], heads: list[Callable[[np.ndarray], np.ndarray]], check: Check,
          metric: Metric) -> None:
    """The metric's gain in points for each theta and beta (mean over the heads and test groups)."""
    x, y, tests = check

    def score(extra: float, theta: float) -> float:
        values = []
        for q, gold in tests.values():
            votes = np.maximum(q @ x.T - theta, 0) @ y
            for head in heads:
                logits = head(q) + extra * votes
                values.append(metric([labels[i] for i in logits.argmax(1)], gold))
        return float(np.mean(values))

    base = score(0.0, 0.0)
    print(json.dumps({"check": name, "base": round(base, 4), "gain_points": {
        f"theta {t}": {f"beta {b}": round(100 * (score(b, t) - base), 1) for b in BETAS} for t in THETAS}}),
        flush=True)


def youtube(folder: Path) -> None:
    cache = _cache(None, 256)
    videos = read_videos(folder / "train.jsonl", 1024, ("title_tags",))
    regions = [json.loads(line)["region"] for line in (folder / "train.jsonl").open(encoding="utf-8")]
    labels = tuple(sorted({e.labels[0] for e in videos}))

    def rows(examples: list[Example]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [(t, e.labels) for e in examples for t in (e.text, *e.views) if t]
        return cache.embed([t for t, _ in pairs]), one_hot([names for _, names in pairs], labels)

    def test(examples: list[Example]) -> tuple[np.ndarray, list]:
        return cache.embed([e.text for e in examples]), [e.labels for e in examples]

    english = [e for e, r in zip(videos, regions, strict=True) if r in ("US", "GB")]
    french = [e for e, r in zip(videos, regions, strict=True) if r == "FR"]
    checks = {"train -> dev_BR": (videos, read_videos(folder / "dev_BR.jsonl", 1024)),
              "US + GB -> FR": (english, french), "FR -> US + GB": (french, english)}
    for name, (train, target) in checks.items():
        x, y = rows(train)
        w, b = fit_linear(x, y, 0.03)
        for metric_name, metric in (("top-1", accuracy), ("macro-F1", macro_f1)):
            gains(f"YouTube {name}, {metric_name}", labels, [lambda q, w=w, b=b: q @ w + b],
                  (x, y, {"test": test(target)}), metric)


def sib200(folder: Path) -> None:
    cache = _cache(None, 128)
    labels = tuple(sorted({e.labels[0] for e in read_sib_split(folder / "eng_Latn", "train")}))

    def split(languages: tuple[str, ...], name: str) -> tuple[np.ndarray, np.ndarray, list]:
        examples = [e for lang in languages for e in read_sib_split(folder / lang, name)]
        x = cache.embed([e.text for e in examples])
        return x, one_hot([e.labels for e in examples], labels), [e.labels for e in examples]

    hp = HyperParameters(hidden=256, label_smoothing=0.1, linear_weight=0.25)
    zero_shot = ("deu_Latn", "spa_Latn", "jpn_Jpan", "arb_Arab")
    checks = {"eng + fra -> deu, spa, jpn, arb": (("eng_Latn", "fra_Latn"), zero_shot),
              "eng -> fra dev": (("eng_Latn",), ("fra_Latn",)),
              "fra -> eng dev": (("fra_Latn",), ("eng_Latn",))}
    for name, (train_languages, test_languages) in checks.items():
        x, y, _ = split(train_languages, "train")
        dev_x, dev_y, _ = split(train_languages, "dev")
        tests = {}
        for lang in test_languages:
            test_x, _, gold = split((lang,), "dev")
            tests[lang] = (test_x, gold)
        models = [fit_head(x, y, dev_x, dev_y, replace(hp, seed=seed)).model for seed in (13, 15, 17)]
        heads = [lambda q, m=m: served_logits(m, q) for m in models]
        gains(f"SIB-200 {name}, top-1, 3 seeds", labels, heads, (x, y, tests), accuracy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data")
    data = parser.parse_args().data
    youtube(data / "youtube")
    sib200(data / "sib200")


if __name__ == "__main__":
    main()
