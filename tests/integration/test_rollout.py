"""Rollout under traffic: the worker hot-swaps its head when the model pointer flips.

Real broker, Redis and TF encoder. `models/current` style: the worker serves a symlink that
an ML engineer flips atomically from one version's directory to the next. Every upload must
be scored exactly once, by one version; batches already started finish on the old version,
so no old-version output follows a new-version one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.test_worker_end_to_end import distinct_uploads, wait_for
from tests.integration.worker_harness import read_outputs, running_worker
from worker.cache import video_key
from worker.encoders import muse_identity
from worker.sample import produce_uploads
from worker.settings import DEFAULT_MODEL_DIR, Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = pytest.mark.integration
NEW_VERSION = "head-rollout-test-v2"


def point(link: Path, target: Path) -> None:
    """Flip `link` to `target` atomically (rename over the old link), as a deploy would."""
    staging = link.with_name(link.name + ".new")
    staging.symlink_to(target, target_is_directory=True)
    os.replace(staging, link)


def versions(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "v1", tmp_path / "v2"
    shutil.copytree(DEFAULT_MODEL_DIR, old)
    shutil.copytree(DEFAULT_MODEL_DIR, new)
    meta = json.loads((new / "model.json").read_text())
    meta["version"] = NEW_VERSION  # same head, another version string: enough to see who scored what
    (new / "model.json").write_text(json.dumps(meta))
    return old, new


def test_a_flipped_model_pointer_swaps_the_head_between_batches(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    old, new = versions(tmp_path)
    current = tmp_path / "current"
    point(current, old)
    settings = make_settings(worker_model_dir=current, worker_model_watch_interval_s=0.2)
    ensure_topics(settings, worker_topics(settings), partitions=4)
    before, during, after = (distinct_uploads(n, name) for n, name in ((60, "before"), (200, "during"),
                                                                      (40, "after")))

    with running_worker(settings) as worker:
        old_version = worker.model_version
        # the video keys' namespace names the text recipe (starter: 1024 characters, view title_tags)
        namespace = worker.video_namespace
        assert namespace == f"{muse_identity().short}/t256/c1024/v=title_tags"
        produce_uploads(settings, before)
        read_outputs(settings, expected=len(before))
        produce_uploads(settings, during)
        time.sleep(0.3)  # the worker is busy with `during` when the pointer flips
        point(current, new)
        wait_for(lambda: worker.model_version == NEW_VERSION)
        produce_uploads(settings, after)
        outputs = read_outputs(settings, expected=len(before) + len(during) + len(after))
        assert worker.video_namespace == namespace  # a hot swap keeps the recipe, so the video keys

    assert all(o["embedding_key"] == video_key(namespace, o["video_id"]) for o in outputs)

    by_video: dict[str, list[dict]] = {}
    for output in outputs:
        by_video.setdefault(output["video_id"], []).append(output)
    assert all(len(scored) == 1 for scored in by_video.values()), "an upload was scored twice"
    version_of = {video: scored[0]["model_version"] for video, scored in by_video.items()}
    assert {version_of[u.video_id] for u in before} == {old_version}
    assert {version_of[u.video_id] for u in after} == {NEW_VERSION}
    assert set(version_of.values()) == {old_version, NEW_VERSION}
    # the swap happens between batches: every old-version output was labelled before any new one
    last_old = max(o["processed_time"] for o in outputs if o["model_version"] == old_version)
    first_new = min(o["processed_time"] for o in outputs if o["model_version"] == NEW_VERSION)
    assert last_old <= first_new
