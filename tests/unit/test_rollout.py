"""The model watcher swaps to a new head only when the worker can serve it as it was trained."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from tests.unit.test_classify import IDENTITY, random_head, save
from worker import classify
from worker.classify import Classifier, IncompatibleModelError, load_classifier
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


def test_a_head_with_another_label_set_is_swapped_in_with_a_warning_naming_the_change(tmp_path: Path) -> None:
    watcher, link = watch(tmp_path)
    meta = json.loads((tmp_path / "a" / "model.json").read_text())
    same = {**meta, "version": "head-same-labels"}
    relabelled = {**meta, "version": "head-relabelled", "labels": ["Music", "Sports", "Travel"]}
    with capture_logs() as logs:
        for new_meta in (same, relabelled):
            (tmp_path / "a" / "model.json").write_text(json.dumps(new_meta))
            os.utime(tmp_path / "a" / "model.json", ns=(len(logs) + 1, len(logs) + 1))
            swapped = watcher.poll(time.monotonic())
            assert swapped is not None and swapped.version == new_meta["version"]
    assert [e for e in logs if e["event"] == "model_labels_changed"] == [{
        "event": "model_labels_changed", "log_level": "warning", "old": "head-same-labels",
        "new": "head-relabelled", "added": ["Travel"], "removed": ["Gaming"],
    }]


def test_mean_per_item_averages_each_items_texts_and_renormalises() -> None:
    vectors = np.eye(3, dtype=np.float32)
    np.testing.assert_allclose(mean_per_item(vectors, [0, 1, 0], 2), [[2**-0.5, 0, 2**-0.5], [0, 1, 0]], atol=1e-6)
    assert mean_per_item(vectors, [0, 1, 2], 3) is vectors  # one text each: unchanged


def heads(tmp_path: Path, names: str = "abc") -> dict[str, Path]:
    """Heads with the same recipe and different weights (so different versions), and `current` -> the first."""
    folders = {name: tmp_path / name for name in names}
    for seed, folder in enumerate(folders.values()):
        save(random_head(seed), folder)
    (tmp_path / "current").symlink_to(folders[names[0]])
    return folders


def flip_before_reading_weights(monkeypatch: pytest.MonkeyPatch, link: Path, target: Path) -> list[Path]:
    """Flip `link` to `target` between the head's two reads: after model.json, before head.keras."""
    read = classify.read_keras_head
    opened: list[Path] = []

    def flipping(path: Path) -> dict[str, object]:
        if not opened:
            flip(link, target)
        opened.append(path)
        return read(path)

    monkeypatch.setattr(classify, "read_keras_head", flipping)
    return opened


def assert_is(head: Classifier, folder: Path) -> None:
    """`head` is the head in `folder`: its version, labels and thresholds with its weights."""
    alone = load_classifier(folder, IDENTITY)
    assert head.version == alone.version
    np.testing.assert_array_equal(head.thresholds, alone.thresholds)
    np.testing.assert_array_equal(head.out_kernel, alone.out_kernel)
    np.testing.assert_array_equal(head.hidden_kernel, alone.hidden_kernel)


def test_a_pointer_flipped_between_the_two_reads_of_a_swap_does_not_mix_two_heads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = heads(tmp_path)
    link = tmp_path / "current"
    watcher = ModelWatcher(link, IDENTITY, interval_s=0)
    flip(link, folders["b"])
    opened = flip_before_reading_weights(monkeypatch, link, folders["c"])
    swapped = watcher.poll(time.monotonic())
    read_from = list(opened)
    monkeypatch.undo()
    assert swapped is not None
    assert_is(swapped, folders["b"])
    assert read_from == [folders["b"].resolve() / "head.keras"]  # the weights came from b's own directory
    swapped = watcher.poll(time.monotonic())  # the pointer now names c: the next check loads it
    assert swapped is not None
    assert_is(swapped, folders["c"])


def test_a_pointer_flipped_while_the_first_head_loads_does_not_mix_two_heads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = heads(tmp_path, "ab")
    link = tmp_path / "current"
    flip_before_reading_weights(monkeypatch, link, folders["b"])
    watcher = ModelWatcher(link, IDENTITY, interval_s=0)
    monkeypatch.undo()
    assert_is(watcher.current, folders["a"])
    swapped = watcher.poll(time.monotonic())
    assert swapped is not None
    assert_is(swapped, folders["b"])


def set_meta(folder: Path, **fields: object) -> None:
    meta = json.loads((folder / "model.json").read_text())
    meta.update(fields)
    (folder / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"thresholds": [0.5, 0.4]}, r"3 labels but thresholds has shape \(2,\)"),
        ({"prior": [0.5, 0.3, 0.1, 0.1]}, r"3 labels but prior has shape \(4,\)"),
        ({"labels": ["Music", "Sports", "Gaming", "News"], "thresholds": [0.5] * 4, "prior": [0.25] * 4},
         r"W2 of head.keras has shape \(16, 3\), expected \(16, 4\)"),
    ],
)
def test_a_malformed_head_is_refused_at_load_and_a_swap_to_it_keeps_the_old_one(
    tmp_path: Path, fields: dict[str, object], message: str
) -> None:
    folders = heads(tmp_path, "ab")
    set_meta(folders["b"], **fields)
    with pytest.raises(IncompatibleModelError, match=message):
        load_classifier(folders["b"], IDENTITY)
    watcher = ModelWatcher(tmp_path / "current", IDENTITY, interval_s=0)
    first = watcher.current
    flip(tmp_path / "current", folders["b"])
    assert watcher.poll(time.monotonic()) is None and watcher.current is first
    assert watcher.current.logits(np.ones((1, 512), np.float32)).shape == (1, 3)  # still serving


def test_a_head_edited_in_place_while_it_loads_is_loaded_again_at_the_next_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = heads(tmp_path, "ab")
    watcher = ModelWatcher(tmp_path / "current", IDENTITY, interval_s=0)
    set_meta(folders["a"], version="head-edited")
    read = classify.read_keras_head

    def rewritten_meanwhile(path: Path) -> dict[str, object]:
        parts = read(path)
        set_meta(folders["a"], version="head-edited-again", thresholds=[0.1, 0.2, 0.3])
        return parts

    monkeypatch.setattr(classify, "read_keras_head", rewritten_meanwhile)
    assert watcher.poll(time.monotonic()) is None  # changed during the load: not swapped in
    monkeypatch.undo()
    swapped = watcher.poll(time.monotonic())
    assert swapped is not None and swapped.version == "head-edited-again"
    np.testing.assert_allclose(swapped.thresholds, [0.1, 0.2, 0.3])
