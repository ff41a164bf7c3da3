"""Labelled examples from video JSON Lines files and SIB-200 style folders.

Every text goes through `worker.text.build_text`, the function the worker serves with.
A SIB-200 sentence is passed as a title (no tags, no description): it is short, like a
title, and the title is the part the worker never trims.

Splits: a SIB-200 folder (`<lang>/<split>.tsv`) is read by split name; a JSON Lines
file has no splits, so `train` holds out a seeded, stratified share of it as dev. A single
`.tsv` file is read whole like a JSON Lines file, its group named after its folder.

Data that cannot be read raises `DataError`, naming the file (and the line where it can).

Views (training augmentation): a video can also be learnt from other texts built from its
metadata (e.g. without the description), since uploaders in other regions fill the fields
differently. They ride along on the example (`Example.views`) so splits and few-shot samples
keep a video's views together, and only what is fitted on expands them (`with_views`).
A model may also be scored on the mean of the full text's and other views' embeddings (its
`embed_views`): those texts ride along as `Example.embed_with` on the rows scored (dev,
evaluation), as `Upload.embed_with` does in the worker.

Rows the worker would dead-letter for their text (no title, nothing left after cleaning) are never
served: evaluation reads them marked with the worker's reason (`Example.refused`), to count, not score.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from worker.decode import InvalidEvent, upload_of
from worker.records import SourceRef
from worker.text import DEFAULT_MAX_CHARS, build_text, build_texts, build_views, tag_list

log = structlog.get_logger(__name__)
SIB_COLUMNS = ("category", "text")  # index_id is optional: rows without one are keyed by their text


class DataError(ValueError):
    """Labelled data that cannot be read as asked: the message names the file, and the line where it can."""


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    labels: tuple[str, ...]
    group: str  # the language (SIB-200 folder name) or region (video `region`) reported on
    views: tuple[str, ...] = ()  # other texts of the same item, for training only
    embed_with: tuple[str, ...] = ()  # texts whose embeddings are averaged with `text`'s when scored
    item: str = ""  # what the row is about: "video:<id>", "sib:<index_id>" (shared by its translations)
    refused: str = ""  # the worker's dead-letter reason for the row (read with mark_refused only; no text then)


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


def dead_letter_reason(title: str, tags: Sequence[str], description: str, max_chars: int) -> str:
    """The reason the worker would dead-letter an upload with these fields instead of categorizing it, by the
    worker's own check (`worker.decode.upload_of`): `missing-field` (no title), `empty-text`; "" if served."""
    record = {"video_id": "labelled-row", "title": title, "tags": list(tags), "description": description}
    try:
        upload_of(record, SourceRef("labelled-data", 0, 0), max_chars, ())
    except InvalidEvent as error:
        return error.reason
    return ""


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
    path: Path, max_chars: int = DEFAULT_MAX_CHARS, views: Sequence[str] = (), embed_views: Sequence[str] = (),
    mark_refused: bool = False,
) -> list[Example]:
    """One example per line with a non-empty text and a category (a string or a list); with `mark_refused`,
    also each labelled line the worker would dead-letter, marked with its reason (`Example.refused`)."""
    examples: list[Example] = []
    skipped = 0
    for row in json_objects(text_lines(path), str(path)):
        labels = _labels(row.get("category"))
        title, tags, description = video_fields(row)
        item = f"video:{row['video_id']}" if row.get("video_id") else content_item(title, tags, description)
        group = str(row.get("region") or path.stem)
        if labels and mark_refused and (reason := dead_letter_reason(title, tags, description, max_chars)):
            examples.append(Example("", labels, group, item=item, refused=reason))
            continue
        text, embed_with = build_texts(title, tags, description, embed_views, max_chars)  # as the worker serves
        if not (text and labels):
            skipped += 1
            continue
        extra = build_views(title, tags, description, views, text, max_chars)
        examples.append(Example(text, labels, group, extra, embed_with, item))
    if skipped:
        log.warning("rows_skipped", path=str(path), rows=skipped, why="no category, or no text left after cleaning")
    return examples


def _labels(category: object) -> tuple[str, ...]:
    """A row's labels, stripped; none when it has no category or an empty one."""
    values = category if isinstance(category, list) else [category]
    labels = tuple(str(value).strip() for value in values if value is not None)
    return labels if labels and all(labels) else ()


def json_objects(lines: Iterable[str], source: str) -> Iterator[dict]:
    """The object on each non-blank line of JSON Lines; DataError names `source` and the line otherwise."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{source}:{number}: not JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{source}:{number}: a JSON {type(row).__name__}, not an object per line")
        yield row


def text_lines(path: Path) -> Iterator[str]:
    """UTF-8, with or without a byte order mark (which would otherwise join the first column's name)."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        try:
            yield from f
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: not UTF-8 (byte {error.start}); convert it first") from None


def read_sib_tsv(
    path: Path, group: str, max_chars: int = DEFAULT_MAX_CHARS, mark_refused: bool = False
) -> list[Example]:
    """Columns index_id, category, text; tab-separated with CSV double-quote quoting. A sentence is an upload's
    title: with `mark_refused`, a labelled one the worker would dead-letter comes marked with the reason."""
    reader = csv.DictReader(text_lines(path), delimiter="\t")
    missing = [c for c in SIB_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise DataError(f"{path}: no {' or '.join(missing)} column (header: {reader.fieldnames}); a SIB-200 "
                        "file is tab-separated with a header: index_id, category, text")
    rows = list(reader)
    examples = []
    for number, row in enumerate(rows, 2):
        if row["text"] is None or row["category"] is None:
            raise DataError(f"{path}: row {number} has fewer columns than the header")
        if not (label := row["category"].strip()):
            continue
        item = f"sib:{row['index_id']}" if row.get("index_id") else content_item(row["text"])
        if mark_refused and (reason := dead_letter_reason(row["text"], (), "", max_chars)):
            examples.append(Example("", (label,), group, item=item, refused=reason))
        elif text := sentence_text(row["text"], max_chars):
            examples.append(Example(text, (label,), group, item=item))
    return examples


def read_labelled_file(
    path: Path, max_chars: int = DEFAULT_MAX_CHARS, views: Sequence[str] = (), embed_views: Sequence[str] = (),
    mark_refused: bool = False,
) -> list[Example]:
    """A file read whole: a `.tsv` as SIB-200 rows grouped under its folder's name, anything else as
    JSON Lines videos."""
    if path.suffix.lower() == ".tsv":
        return read_sib_tsv(path, path.resolve().parent.name, max_chars, mark_refused)
    return read_videos(path, max_chars, views, embed_views, mark_refused)


def sib_languages(folder: Path) -> list[Path]:
    """The language sub-folders of a SIB-200 root, or the folder itself if it holds the TSVs."""
    if any(folder.glob("*.tsv")):
        return [folder]
    languages = sorted(p for p in folder.iterdir() if p.is_dir() and any(p.glob("*.tsv")))
    if not languages:
        raise DataError(f"{folder}: no .tsv files in it or in its sub-folders (a SIB-200 folder holds <lang>/"
                        "<split>.tsv; pass a JSON Lines file itself, not its folder)")
    return languages


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
        return read_labelled_file(path, max_chars, views, embed_views)
    return _read_sib_first_split(path, ("dev",), max_chars)


def read_for_evaluation(
    path: Path, max_chars: int = DEFAULT_MAX_CHARS, embed_views: Sequence[str] = (), mark_refused: bool = False
) -> list[Example]:
    """JSON Lines read whole; a SIB-200 folder per language: test.tsv where present, else dev.tsv. With
    `mark_refused`, the rows the worker would dead-letter come too, marked (`Example.refused`), without text.

    A sentence is a title alone, so no view of it differs from it: `embed_views` only touch videos.
    """
    if path.is_file():
        return read_labelled_file(path, max_chars, embed_views=embed_views, mark_refused=mark_refused)
    return _read_sib_first_split(path, ("test", "dev"), max_chars, mark_refused)


def read_few_shot_pool(path: Path, max_chars: int = DEFAULT_MAX_CHARS, views: Sequence[str] = ()) -> list[Example]:
    """The labelled rows of a new language that few-shot examples are drawn from.

    JSON Lines read whole, each video with its training `views`; a SIB-200 folder per language:
    train.tsv where present, else dev.tsv, never the test.tsv that `evaluate` reads. Where dev.tsv
    is also what `evaluate` reads (no test.tsv), the model's `fitted_items.txt` makes `evaluate`
    leave the drawn rows out, with their translations in the other languages (same index_id).
    """
    if path.is_file():
        return read_labelled_file(path, max_chars, views)
    return _read_sib_first_split(path, ("train", "dev"), max_chars)


def _read_sib_first_split(
    folder: Path, splits: Sequence[str], max_chars: int, mark_refused: bool = False
) -> list[Example]:
    """Per language sub-folder, the first of `splits` it has."""
    examples: list[Example] = []
    for lang in sib_languages(folder):
        split = next((s for s in splits if (lang / f"{s}.tsv").exists()), None)
        if split is None:
            raise DataError(f"{lang}: no {' or '.join(f'{s}.tsv' for s in splits)}")
        examples.extend(read_sib_tsv(lang / f"{split}.tsv", lang.name, max_chars, mark_refused))
    return examples
