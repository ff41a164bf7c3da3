"""Which text to serve: the second sweep of docs/experiments.md (linear head, cached embeddings).

For each served-text variant, a linear head (worker.training.linear, L2 0.03) is fitted on
texts of that kind and scored on two zero-shot checks:
- dev_BR: trained on the `train` split of train.jsonl (seed 13, as `worker train` splits it);
- en -> FR: trained on the US and GB videos of train.jsonl, evaluated on its FR videos.

    .venv/bin/python experiments/text_views.py [--data ../shared/data/youtube]

Embeddings come from the training embedding cache (.cache/embeddings), so a re-run is seconds.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker.text import build_text, clean_description, clean_tags, cut, split_words, squeeze
from worker.training.data import video_text
from worker.training.head import one_hot
from worker.training.linear import fit_linear
from worker.training.metrics import accuracy, macro_f1
from worker.training.pipeline import _cache
from worker.training.splits import load_training_data

MAX_CHARS, MAX_TOKENS, L2 = 1024, 256, 0.03
_HASHTAG, _WORD = re.compile(r"#(\w+)"), re.compile(r"\b[^\W\d_]{2,}\b")

Row = dict
TextOf = Callable[[Row], str]


def with_description_cap(cap: int) -> TextOf:
    """Title, tags and at most `cap` characters of description (build_text otherwise)."""

    def text(row: Row) -> str:
        title = squeeze(_HASHTAG.sub(lambda m: split_words(m.group(1)), row.get("title") or ""))
        tags = clean_tags(row.get("tags") or (), MAX_CHARS - len(title))
        budget = min(cap, MAX_CHARS - len(title) - len(tags))
        description = cut(clean_description((row.get("description") or "")[: budget * 4], budget), budget) \
            if budget > 0 else ""
        return ". ".join(p for p in (title, tags, description) if p)

    return text


def title_tags(row: Row) -> str:
    return build_text(row.get("title") or "", row.get("tags") or (), "", MAX_CHARS)


def full(row: Row) -> str:
    return video_text(row, MAX_CHARS)


def description_only(row: Row) -> str:
    """The description, given the budget left after title and tags (so both texts together cost
    about the tokens of the full text)."""
    budget = MAX_CHARS - len(title_tags(row)) - 2
    description = (row.get("description") or "")[: budget * 4]
    return cut(clean_description(description, budget), budget) if budget > 0 else ""


def lower_shouting(text_of: TextOf) -> TextOf:
    return lambda row: _WORD.sub(lambda m: m.group(0).lower() if m.group(0).isupper() else m.group(0), text_of(row))


def labels_of(row: Row) -> tuple[str, ...]:
    return (row["category"],) if isinstance(row["category"], str) else tuple(row["category"])


class Features:
    """Embeddings of one or several texts per row (their mean, re-normalised when asked)."""

    def __init__(self, *texts: TextOf, normalise: bool = False) -> None:
        self.texts, self.normalise = texts, normalise
        self.cache = _cache(None, MAX_TOKENS)

    def __call__(self, rows: list[Row]) -> np.ndarray:
        x = sum(self.cache.embed([text(r) for r in rows]) for text in self.texts) / len(self.texts)
        return x / np.linalg.norm(x, axis=1, keepdims=True) if self.normalise else x


class ApartFeatures:
    """Title + tags and the description embedded apart: w * first + (1 - w) * second, re-normalised
    (title + tags alone when there is no description)."""

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.cache = _cache(None, MAX_TOKENS)

    def __call__(self, rows: list[Row]) -> np.ndarray:
        heads = self.cache.embed([title_tags(r) for r in rows])
        descriptions = [description_only(r) for r in rows]
        tails = self.cache.embed([d or "-" for d in descriptions])
        has_description = np.array([bool(d) for d in descriptions])[:, None]
        x = np.where(has_description, self.weight * heads + (1 - self.weight) * tails, heads)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def score(features: Callable[[list[Row]], np.ndarray], train: list[Row], test: list[Row],
          labels: tuple[str, ...]) -> tuple[float, float]:
    w, b = fit_linear(features(train), one_hot([labels_of(r) for r in train], labels), L2)
    predicted = [labels[i] for i in (features(test) @ w + b).argmax(1)]
    gold = [labels_of(r) for r in test]
    return round(accuracy(predicted, gold), 3), round(macro_f1(predicted, gold), 3)


def read_youtube(description: str | None) -> tuple[Path, list[Row], list[Row]]:
    """(the --data folder, its train.jsonl rows, its dev_BR.jsonl rows)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/youtube")
    folder = parser.parse_args().data

    def read(name: str) -> list[Row]:
        return [json.loads(line) for line in (folder / name).open(encoding="utf-8")]

    return folder, read("train.jsonl"), read("dev_BR.jsonl")


def main() -> None:
    folder, rows, brazil = read_youtube(__doc__)
    train_split, dev_split = load_training_data([folder / "train.jsonl"], [], 0.15, 13, MAX_CHARS)
    train_texts = {e.text for e in train_split}
    train = [r for r in rows if full(r) in train_texts]
    labels = tuple(sorted({label for e in train_split + dev_split for label in e.labels}))
    english = [r for r in rows if r.get("region") in ("US", "GB")]
    french = [r for r in rows if r.get("region") == "FR"]
    variants = {
        "full text": Features(full),
        "title + tags": Features(title_tags),
        "title + tags + 100 chars of description": Features(with_description_cap(100)),
        "title + tags + 200 chars of description": Features(with_description_cap(200)),
        "mean of full and title + tags": Features(full, title_tags),
        "same, re-normalised": Features(full, title_tags, normalise=True),
        "same, all-caps words lower-cased": Features(lower_shouting(full), lower_shouting(title_tags),
                                                     normalise=True),
        **{f"title + tags and description apart, weights {w} / {1 - w:.1f}": ApartFeatures(w) for w in (0.5, 0.7)},
    }
    for name, features in variants.items():
        print(json.dumps({"variant": name, "dev_BR": score(features, train, brazil, labels),
                          "en_to_FR": score(features, english, french, labels)}), flush=True)


if __name__ == "__main__":
    main()
