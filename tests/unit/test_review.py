"""Which uploads go to the review topic: a stable hashed sample first, then low confidence."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from worker.review import LOW_CONFIDENCE, SAMPLE, in_sample, review_reason
from worker.review_export import labelling_row
from worker.settings import REPO_ROOT

IDS = [f"video-{i}" for i in range(20_000)]


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.5])
def test_the_sample_is_the_share_asked_for(rate: float) -> None:
    share = sum(in_sample(video_id, rate) for video_id in IDS) / len(IDS)
    assert share == pytest.approx(rate, abs=4 * (rate * (1 - rate) / len(IDS)) ** 0.5)


def test_the_sample_is_stable_and_nested() -> None:
    small = {v for v in IDS if in_sample(v, 0.05)}
    # the same videos in every process and on every replica (a hash Python salts per process would not be)
    assert len(small) == 1026 and {"video-6", "video-32", "video-36", "video-64", "video-105"} <= small
    assert small < {v for v in IDS if in_sample(v, 0.2)}  # raising the rate keeps the videos already chosen
    assert not any(in_sample(v, 0.0) for v in IDS) and all(in_sample(v, 1.0) for v in IDS)


def test_a_sampled_upload_is_a_sample_whatever_its_confidence() -> None:
    sampled = next(v for v in IDS if in_sample(v, 0.1))
    other = next(v for v in IDS if not in_sample(v, 0.1))
    assert review_reason(sampled, 0.1, 0.35, 0.1) == SAMPLE
    assert review_reason(sampled, 0.9, 0.35, 0.1) == SAMPLE
    assert review_reason(other, 0.1, 0.35, 0.1) == LOW_CONFIDENCE
    assert review_reason(other, 0.9, 0.35, 0.1) is None
    assert review_reason(sampled, 0.9, 0.35, 0.0) is None


def test_a_review_copy_becomes_a_training_line_without_a_category() -> None:
    when = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    request = {"video_id": "v", "title": "Golaço", "tags": ["futebol"], "description": "", "channel_id": None,
               "language": "pt", "top_label": "Sports", "confidence": 0.123456,
               "categories": [{"label": "Sports", "score": 0.91234}], "model_version": "head-x",
               "event_time": when, "processed_time": when, "reason": SAMPLE}
    row = labelling_row(request)
    assert "category" not in row and row["region"] == "pt" and row["reason"] == SAMPLE
    assert row["predicted"] == {"top_label": "Sports", "confidence": 0.1235, "categories": [["Sports", 0.9123]],
                                "model_version": "head-x", "processed_time": "2026-11-21T12:00:00+00:00"}
    assert "region" not in labelling_row({**request, "language": None})


def export_review_command(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "WORKER_REVIEW_TOPIC": "review"}  # never reached
    return subprocess.run([sys.executable, "-m", "worker", "export-review", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_command_refuses_an_unknown_reason_and_a_file_a_labeller_may_hold(tmp_path: Path) -> None:
    unknown = export_review_command("--reason", "random", "--out", str(tmp_path / "new.jsonl"))
    assert unknown.returncode == 2 and "unknown reason" in unknown.stderr
    taken = tmp_path / "taken.jsonl"
    taken.write_text("work in progress\n", encoding="utf-8")
    existing = export_review_command("--reason", SAMPLE, "--out", str(taken))
    assert existing.returncode == 2 and "exists" in existing.stderr
    assert taken.read_text(encoding="utf-8") == "work in progress\n"
