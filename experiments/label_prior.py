"""Label prior (`train --label-prior s`): the sixth sweep of docs/experiments.md.

The starter's linear head (L2 0.03, full texts plus title + tags texts as training rows, served on
the re-normalised mean of the full-text and title + tags embeddings), its L2 pulling the weights
toward s x each label name's embedding instead of toward zero, for a grid of s. Four checks:
- in-language: the 15% dev split `worker train` holds out (seed 13) from the 85% it fits on;
- en -> FR: US + GB -> FR videos of train.jsonl; fr -> en: FR -> US + GB (never touch dev_BR);
- BR: all of train.jsonl -> dev_BR (the zero-shot dev set).

    .venv/bin/python experiments/label_prior.py [--data ../shared/data/youtube]

One JSON line per s: [top-1, macro-F1] per check. Deterministic; embeddings come from the
training embedding cache (.cache/embeddings).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from text_views import L2, MAX_CHARS, Features, Row, full, labels_of, read_youtube, title_tags  # noqa: E402

from worker.training.head import one_hot  # noqa: E402
from worker.training.linear import fit_linear, label_prior_weights  # noqa: E402
from worker.training.metrics import accuracy, macro_f1  # noqa: E402
from worker.training.splits import load_training_data  # noqa: E402

STRENGTHS = (0, 3, 5, 7, 10, 15, 20)


def main() -> None:
    folder, rows, brazil = read_youtube(__doc__)
    labels = tuple(sorted({label for r in rows for label in labels_of(r)}))
    _, dev_split = load_training_data([folder / "train.jsonl"], [], 0.15, 13, MAX_CHARS)
    dev_texts = {e.text for e in dev_split}
    in_regions = lambda *regions: [r for r in rows if r.get("region") in regions]  # noqa: E731
    checks: dict[str, tuple[list[Row], list[Row]]] = {
        "in-language": ([r for r in rows if full(r) not in dev_texts], [r for r in rows if full(r) in dev_texts]),
        "en -> FR": (in_regions("US", "GB"), in_regions("FR")),
        "fr -> en": (in_regions("FR"), in_regions("US", "GB")),
        "BR": (rows, brazil),
    }
    full_text, short_text = Features(full), Features(title_tags)
    served = Features(full, title_tags, normalise=True)
    names = full_text.cache.embed(list(labels))
    for strength in STRENGTHS:
        prior = label_prior_weights(names, strength) if strength else None
        scores = {}
        for name, (train, test) in checks.items():
            train = [r for r in train if full(r)]
            short = [r for r in train if title_tags(r)]
            x = np.concatenate([full_text(train), short_text(short)])
            y = one_hot([labels_of(r) for r in train + short], labels)
            w, b = fit_linear(x, y, L2, prior)
            predicted = [labels[i] for i in (served(test) @ w + b).argmax(1)]
            gold = [labels_of(r) for r in test]
            scores[name] = [round(accuracy(predicted, gold), 4), round(macro_f1(predicted, gold), 4)]
        print(json.dumps({"label_prior": strength, **scores}), flush=True)


if __name__ == "__main__":
    main()
