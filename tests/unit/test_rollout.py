"""The model watcher swaps to a new head only when the worker can serve it as it was trained."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from tests.unit.test_classify import IDENTITY, random_head, save
from worker.embed import mean_per_item
from worker.rollout import ModelWatcher


def with_text(folder: Path, **text: object) -> None:
    meta = json.loads((folder / "model.json").read_text())
    meta["text"] = {**meta.get("text", {}), **text}
    meta["version"] += "-" + "-".join(f"{k}{v}" for k, v in text.items())
    (folder / "model.json").write_text(json.dumps(meta))


def watch(tmp_path: Path) -> tuple[ModelWatcher, Path]:
    for name in ("a", "b", "c"):
        save(random_head(), tmp_path / name)
    with_text(tmp_path / "b", embed_views=["title_tags"])
    with_text(tmp_path / "c", max_chars=2048)
    (tmp_path / "current").symlink_to(tmp_path / "a")
    return ModelWatcher(tmp_path / "current", IDENTITY, interval_s=0), tmp_path / "current"


def flip(link: Path, target: Path) -> None:
    link.unlink()
    link.symlink_to(target)


def test_a_head_with_another_text_recipe_is_refused_and_the_current_one_kept(tmp_path: Path) -> None:
    watcher, link = watch(tmp_path)
    first = watcher.current
    for other in ("b", "c"):  # other embed views, another character budget
        flip(link, tmp_path / other)
        assert watcher.poll(time.monotonic()) is None and watcher.current is first
    flip(link, tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "model.json").read_text())
    meta["version"] = "head-same-recipe"
    (tmp_path / "a" / "model.json").write_text(json.dumps(meta))
    os.utime(tmp_path / "a" / "model.json", ns=(1, 1))
    swapped = watcher.poll(time.monotonic())
    assert swapped is not None and swapped.version == "head-same-recipe" and watcher.current is swapped


def test_mean_per_item_averages_each_items_texts_and_renormalises() -> None:
    vectors = np.eye(3, dtype=np.float32)
    np.testing.assert_allclose(mean_per_item(vectors, [0, 1, 0], 2), [[2**-0.5, 0, 2**-0.5], [0, 1, 0]], atol=1e-6)
    assert mean_per_item(vectors, [0, 1, 2], 3) is vectors  # one text each: unchanged
