"""Which rows train, which choose the epochs and thresholds (dev), which few-shot rows join them.

A JSON Lines file has no splits: `load_training_data` holds out a seeded, stratified share of it as
dev (`split_holdout`). A SIB-200 folder brings its own (`worker.training.data`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from worker.text import DEFAULT_MAX_CHARS
from worker.training.data import Example, read_dev, read_labelled_file, read_sib_train_and_dev


def split_holdout(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Stratified by first label: holds out about `fraction` of each label's rows, at least one and never all
    of them when it has 2+ (a label with one row stays in train)."""
    by_label: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by_label[ex.labels[0]].append(ex)
    rng = random.Random(seed)
    kept, held = [], []
    for label in sorted(by_label):
        rows = by_label[label][:]
        rng.shuffle(rows)
        n_held = min(max(1, round(len(rows) * fraction)), len(rows) - 1) if len(rows) > 1 else 0
        held.extend(rows[:n_held])
        kept.extend(rows[n_held:])
    return kept, held


def load_training_data(
    paths: Iterable[Path],
    dev_paths: Iterable[Path],
    dev_fraction: float,
    seed: int,
    max_chars: int = DEFAULT_MAX_CHARS,
    views: Sequence[str] = (),
    embed_views: Sequence[str] = (),
) -> tuple[list[Example], list[Example]]:
    """(train, dev): SIB folders by split; JSON Lines split unless separate `dev_paths` are given.

    Videos carry their extra `views`: expand the training side with `with_views`; dev is scored
    as the model is served (with its `embed_views`), and its views join the fit only in a refit
    on train + dev.
    """
    dev_paths = list(dev_paths)
    train: list[Example] = []
    dev: list[Example] = [ex for p in dev_paths for ex in read_dev(p, max_chars, views, embed_views)]
    for path in paths:
        if path.is_file():
            rows = read_labelled_file(path, max_chars, views, embed_views)
            if dev_paths:
                train.extend(rows)
            else:
                kept, held = split_holdout(rows, dev_fraction, seed)
                train.extend(kept)
                dev.extend(held)
        else:
            sib_train, sib_dev = read_sib_train_and_dev(path, max_chars)
            train.extend(sib_train)
            if not dev_paths:
                dev.extend(sib_dev)
    return train, dev


# A few dozen target-language rows among thousands barely move a regularised head: counted
# 10 times each they do (docs/experiments.md, third sweep).
DEFAULT_FEW_SHOT_WEIGHT = 10


def few_shot_sample(examples: Sequence[Example], k: int, seed: int) -> tuple[list[Example], list[Example]]:
    """(sample, rest): up to `k` examples per label (by first label), seeded; the rest is left out."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        by_label[ex.labels[0]].append(i)
    rng = random.Random(seed)
    chosen: set[int] = set()
    for label in sorted(by_label):
        idx = by_label[label][:]
        rng.shuffle(idx)
        chosen.update(idx[:k])
    sample = [ex for i, ex in enumerate(examples) if i in chosen]
    rest = [ex for i, ex in enumerate(examples) if i not in chosen]
    return sample, rest


def label_set(examples: Iterable[Example]) -> tuple[str, ...]:
    return tuple(sorted({label for ex in examples for label in ex.labels}))


def fingerprint(examples: Iterable[Example]) -> str:
    """sha256 over the (text, labels) pairs in a canonical order: same data, same fingerprint."""
    lines = sorted(json.dumps([ex.text, sorted(ex.labels)], ensure_ascii=False) for ex in examples)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def unseen_dev_groups(train: Iterable[Example], dev: Iterable[Example]) -> list[str]:
    """The groups (regions, languages) dev has rows of and the training rows have none of."""
    return sorted({ex.group for ex in dev} - {ex.group for ex in train})


def parallel_dev_sources(data: Sequence[Path], dev: Sequence[Path]) -> list[Path]:
    """Where the dev split comes from SIB-200 style data: a `--dev` folder or .tsv file, else the `--data`
    folders (their dev.tsv). A .tsv named in `--data` is split like JSON Lines: its dev rows are train sentences."""
    if dev:
        return [p for p in dev if p.is_dir() or p.suffix.lower() == ".tsv"]
    return [p for p in data if p.is_dir()]


def training_caveats(
    train: Sequence[Example], dev: Sequence[Example], data: Sequence[Path], dev_paths: Sequence[Path], refit: bool
) -> list[str]:
    """What `train` warns of but does not refuse: dev rows in a group the head is not trained on, and a refit
    on SIB-200 dev sentences, whose translations are every other language's dev set."""
    caveats = []
    if unseen := unseen_dev_groups(train, dev):
        names, trained = ", ".join(unseen), ", ".join(sorted({ex.group for ex in train}))
        caveats.append(f"dev data in {names}, which the training data has no rows of (it has {trained}): early "
                       "stopping and the thresholds are tuned on data in a group the head is not trained on, so "
                       f"{names} scores measured later are not zero-shot")
    if refit and (sources := parallel_dev_sources(data, dev_paths)):
        caveats.append(f"--refit folds the SIB-200 style dev split ({', '.join(p.name for p in sources)}) into the "
                       "training rows. SIB-200 dev sets are translations of the same sentences in every language, so "
                       "after the refit every other language's dev score is inflated (evaluate leaves those "
                       "sentences out by index_id; --keep-fitted would score them)")
    return caveats
