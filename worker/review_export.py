"""Export review copies to JSON Lines for labelling: `python -m worker export-review --reason R --out FILE`.

The review topic holds `ReviewRequest`s of two reasons (`worker.review`): a fair sample of all
uploads, to `evaluate` a head on, and low-confidence uploads, to train on with `--few-shot-data`.
A run writes the copies of one reason past that reason's bookmark (the group
`<group>-review-export.<reason>` on the review topic) to a new file, one upload per line, and moves
the bookmark once the file is on disk: each copy is exported once, and a run that fails before
its file is complete exports the same copies next time. An upload copied twice (a redelivery in
at-least-once mode) is one line.

A line holds the upload as the training data names it (`title`, `tags`, `description`, ...),
`region` set to its language (the group `evaluate` reports on), and the head's answer under
`predicted`. A labelling tool adds `category`; lines left without one are skipped by `train` and
`evaluate`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.bookmarks import Bookmarks, records_written_before
from worker.settings import Settings


class ExportRefused(Exception):
    """Nothing was read: no review topic is set, or the output file exists."""


@dataclass
class ExportSummary:
    reason: str
    out: str
    dry_run: bool
    languages: Counter[str] = field(default_factory=Counter)  # language (or "unknown") -> lines

    def as_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "exported": sum(self.languages.values()), "out": self.out,
                "languages": dict(sorted(self.languages.items())), "dry_run": self.dry_run}


def export_group(settings: Settings, reason: str) -> str:
    return f"{settings.worker_group_id}-review-export.{reason}"


def labelling_row(request: dict[str, Any]) -> dict[str, Any]:
    """A `ReviewRequest` as a line of training data, less its `category`, which the labeller adds."""
    row = {key: request[key] for key in ("video_id", "title", "tags", "description", "channel_id", "language")}
    if request["language"]:
        row["region"] = request["language"]
    row["reason"] = request["reason"]
    row["predicted"] = {"top_label": request["top_label"], "confidence": round(request["confidence"], 4),
                        "categories": [[c["label"], round(c["score"], 4)] for c in request["categories"]],
                        "model_version": request["model_version"],
                        "processed_time": request["processed_time"].isoformat()}
    return row


def export_review(settings: Settings, reason: str, out: Path, dry_run: bool = False) -> ExportSummary:
    """Write the review copies of `reason` past its bookmark to `out` (which must not exist); see the module doc."""
    if not settings.worker_review_topic:
        raise ExportRefused("WORKER_REVIEW_TOPIC is not set: there is no review topic to export")
    if out.exists() and not dry_run:
        raise ExportRefused(f"{out} exists; export to a new file (a labeller may be working on that one)")
    bookmarks = Bookmarks(settings, settings.worker_review_topic, {reason: export_group(settings, reason)})
    try:
        copies = records_written_before(datetime.now(UTC), bookmarks, settings, "ReviewRequest", "processed_time",
                                        f"{settings.worker_group_id}-review-export")
        # video_id -> its line: a copy sent twice is one line
        rows = {request["video_id"]: labelling_row(request)
                for _where, request in bookmarks.unhandled(copies, lambda request: request["reason"])}
        summary = ExportSummary(reason, str(out), dry_run, Counter(r["language"] or "unknown" for r in rows.values()))
        if not dry_run:
            if rows:
                write_lines_durably(out, rows.values())
            bookmarks.move_past_read()
        return summary
    finally:
        bookmarks.close()


def write_lines_durably(out: Path, rows: Iterable[dict[str, Any]]) -> None:
    """JSON Lines to `out` through a temporary file, flushed to disk before it takes the name."""
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    partial.rename(out)
