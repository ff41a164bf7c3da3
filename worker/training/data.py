"""Labelled examples from video JSON Lines files and SIB-200 style folders.

Every text goes through `worker.text.build_text`, the function the worker serves with.
A SIB-200 sentence is passed as a title (no tags, no description): it is short, like a
title, and the title is the part the worker never trims.

Splits: a SIB-200 folder (`<lang>/<split>.tsv`) is read by split name; a JSON Lines
file has no splits, so `train` holds out a seeded, stratified share of it as dev.

Views (training augmentation): a video can also be learnt from other texts built from its
metadata (e.g. without the description), since uploaders in other regions fill the fields
differently. They ride along on the example (`Example.views`) so splits and few-shot samples
keep a video's views together, and only what is fitted on expands them (`with_views`).
A model may also be scored on the mean of the full text's and other views' embeddings (its
`embed_views`): those texts ride along as `Example.embed_with` on the rows scored (dev,
evaluation), as `Upload.embed_with` does in the worker.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from worker.text import DEFAULT_MAX_CHARS, build_text, build_texts, build_views, tag_list


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    labels: tuple[str, ...]
    group: str  # the language (SIB-200 folder name) or region (video `region`) reported on
    views: tuple[str, ...] = ()  # other texts of the same item, for training only
    embed_with: tuple[str, ...] = ()  # texts whose embeddings are averaged with `text`'s when scored
    item: str = ""  # what the row is about: "video:<id>", "sib:<index_id>" (shared by its translations)


def item_key(example: Example) -> str:
    """The row's item, or its text's hash when it names none: what `evaluate` leaves out once fitted on."""
    return example.item or content_item(example.text)


def content_item(*fields: object) -> str:
    """An item for a row without an id: a hash of its raw fields, the same whatever text budget reads it."""
    canonical = json.dumps(fields, ensure_ascii=False, sort_keys=True)
    return "text:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def video_fields(row: dict) -> tuple[str, tuple[str, ...], str]:
    """(title, tags, description) of a JSON Lines row, as the worker reads an upload's fields."""
    return row.get("title") or "", tag_list(row.get("tags")), row.get("description") or ""


def video_text(row: dict, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    return build_text(*video_fields(row), max_chars)


def with_views(examples: Iterable[Example]) -> list[Example]:
    """Each example, then one example per extra view (same labels and group)."""
    out: list[Example] = []
    for ex in examples:
        out.append(ex)
        out.extend(Example(text, ex.labels, ex.group, item=ex.item) for text in ex.views)
    return out


def sentence_text(sentence: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    return build_text(sentence, (), "", max_chars)


def read_videos(
    path: Path, max_chars: int = DEFAULT_MAX_CHARS, views: Sequence[str] = (), embed_views: Sequence[str] = ()
) -> list[Example]:
    """One example per line with a non-empty text; `category` may be a string or a list."""
    examples: list[Example] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            category = row.get("category")
            labels = tuple(category) if isinstance(category, list) else (str(category),)
            title, tags, description = video_fields(row)
            text, embed_with = build_texts(title, tags, description, embed_views, max_chars)  # as the worker serves
            if text and category:
                extra = build_views(title, tags, description, views, text, max_chars)
                item = f"video:{row['video_id']}" if row.get("video_id") else content_item(title, tags, description)
                examples.append(Example(text, labels, str(row.get("region") or path.stem), extra, embed_with, item))
    return examples


def read_sib_tsv(path: Path, group: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Example]:
    """Columns index_id, category, text; tab-separated with CSV double-quote quoting."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [
        Example(text, (row["category"].strip(),), group,
                item=f"sib:{row['index_id']}" if row.get("index_id") else content_item(row["text"]))
        for row in rows
        if (text := sentence_text(row["text"], max_chars)) and row["category"].strip()
    ]


def sib_languages(folder: Path) -> list[Path]:
    """The language sub-folders of a SIB-200 root, or the folder itself if it holds the TSVs."""
    if any(folder.glob("*.tsv")):
        return [folder]
    return sorted(p for p in folder.iterdir() if p.is_dir() and any(p.glob("*.tsv")))


def read_sib_split(folder: Path, split: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Example]:
    examples: list[Example] = []
    for lang in sib_languages(folder):
        tsv = lang / f"{split}.tsv"
        if tsv.exists():
            examples.extend(read_sib_tsv(tsv, lang.name, max_chars))
    return examples


def read_sib_train_and_dev(folder: Path, max_chars: int = DEFAULT_MAX_CHARS) -> tuple[list[Example], list[Example]]:
    """(train.tsv, dev.tsv) rows of the languages that have a train.tsv. A language without one is a
    zero-shot language: its dev.tsv must choose neither the epochs nor the thresholds."""
    train: list[Example] = []
    dev: list[Example] = []
    for lang in sib_languages(folder):
        if (lang / "train.tsv").exists():
            train.extend(read_sib_tsv(lang / "train.tsv", lang.name, max_chars))
            if (lang / "dev.tsv").exists():
                dev.extend(read_sib_tsv(lang / "dev.tsv", lang.name, max_chars))
    return train, dev


def read_dev(
    path: Path, max_chars: int = DEFAULT_MAX_CHARS, views: Sequence[str] = (), embed_views: Sequence[str] = ()
) -> list[Example]:
    """A separate `--dev`: JSON Lines read whole (with the views a refit fits on); a SIB-200 folder's
    dev.tsv per language, never the test.tsv that `evaluate` reads."""
    if path.is_file():
        return read_videos(path, max_chars, views, embed_views)
    return _read_sib_first_split(path, ("dev",), max_chars)


def read_for_evaluation(
    path: Path, max_chars: int = DEFAULT_MAX_CHARS, embed_views: Sequence[str] = ()
) -> list[Example]:
    """JSON Lines read whole; a SIB-200 folder per language: test.tsv where present, else dev.tsv.

    A sentence is a title alone, so no view of it differs from it: `embed_views` only touch videos.
    """
    if path.is_file():
        return read_videos(path, max_chars, embed_views=embed_views)
    return _read_sib_first_split(path, ("test", "dev"), max_chars)


def read_few_shot_pool(path: Path, max_chars: int = DEFAULT_MAX_CHARS, views: Sequence[str] = ()) -> list[Example]:
    """The labelled rows of a new language that few-shot examples are drawn from.

    JSON Lines read whole, each video with its training `views`; a SIB-200 folder per language:
    train.tsv where present, else dev.tsv, never the test.tsv that `evaluate` reads. Where dev.tsv
    is also what `evaluate` reads (no test.tsv), the model's `fitted_items.txt` makes `evaluate`
    leave the drawn rows out, with their translations in the other languages (same index_id).
    """
    if path.is_file():
        return read_videos(path, max_chars, views)
    return _read_sib_first_split(path, ("train", "dev"), max_chars)


def _read_sib_first_split(folder: Path, splits: Sequence[str], max_chars: int) -> list[Example]:
    """Per language sub-folder, the first of `splits` it has."""
    examples: list[Example] = []
    for lang in sib_languages(folder):
        split = next((s for s in splits if (lang / f"{s}.tsv").exists()), None)
        if split is None:
            raise ValueError(f"{lang}: no {' or '.join(f'{s}.tsv' for s in splits)}")
        examples.extend(read_sib_tsv(lang / f"{split}.tsv", lang.name, max_chars))
    return examples


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
            rows = read_videos(path, max_chars, views, embed_views)
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
