"""Test-time views: serve the mean of two embeddings per upload with the starter's training recipe?

(Shipped since as `train --embed-views title_tags`: docs/experiments.md, fifth sweep.)

The head is fitted as the starter is (linear, L2 0.03, full texts plus title + tags texts as
extra rows, all rows of its training side); each test video is then scored on its full-text
embedding and on the re-normalised mean of its full-text and title + tags
embeddings (a second encoder text per upload). Four zero-shot checks:
- BR: all of train.jsonl -> dev_BR;
- en -> FR: US + GB -> FR videos of train.jsonl; en+CA -> FR: US + GB + CA -> FR;
- fr -> en: FR -> US + GB.

    .venv/bin/python experiments/test_time_views.py [--data ../shared/data/youtube]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from text_views import L2, Features, full, labels_of, read_youtube, title_tags  # noqa: E402

from worker.training.head import one_hot  # noqa: E402
from worker.training.linear import fit_linear  # noqa: E402
from worker.training.metrics import accuracy, macro_f1  # noqa: E402


def main() -> None:
    _, rows, brazil = read_youtube(__doc__)
    labels = tuple(sorted({label for r in rows for label in labels_of(r)}))
    in_regions = lambda *regions: [r for r in rows if r.get("region") in regions]  # noqa: E731
    checks = {
        "BR": (rows, brazil),
        "en -> FR": (in_regions("US", "GB"), in_regions("FR")),
        "en+CA -> FR": (in_regions("US", "GB", "CA"), in_regions("FR")),
        "fr -> en": (in_regions("FR"), in_regions("US", "GB")),
    }
    full_text, short_text = Features(full), Features(title_tags)
    served = {
        "full text": full_text,
        "mean of full and title + tags": Features(full, title_tags, normalise=True),
    }
    for name, (train, test) in checks.items():
        train = [r for r in train if full(r)]
        x = np.concatenate([full_text(train), short_text(train)])
        y = one_hot([labels_of(r) for r in train] * 2, labels)
        w, b = fit_linear(x, y, L2)
        gold = [labels_of(r) for r in test]
        scores = {}
        for served_name, features in served.items():
            predicted = [labels[i] for i in (features(test) @ w + b).argmax(1)]
            scores[served_name] = [round(accuracy(predicted, gold), 4), round(macro_f1(predicted, gold), 4)]
        print(json.dumps({"check": name, "n": len(test), **scores}), flush=True)


if __name__ == "__main__":
    main()
