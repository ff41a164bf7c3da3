"""`python -m worker predict` answers what the worker serves and `evaluate` scores: the same top labels and
confidences, with every label's score and threshold; a row the worker would dead-letter gets its reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from worker.settings import DEFAULT_MODEL_DIR, REPO_ROOT
from worker.training.pipeline import score_model

pytestmark = pytest.mark.integration
VIDEOS = Path(__file__).resolve().parents[1] / "fixtures" / "videos_small.jsonl"


def predict(*args: str, stdin: str | None = None) -> list[dict[str, object]]:
    done = subprocess.run([sys.executable, "-m", "worker", "predict", "--model", str(DEFAULT_MODEL_DIR), *args],
                          input=stdin, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_predict_answers_what_evaluate_scores_with_every_score_and_threshold() -> None:
    rows = [json.loads(line) for line in VIDEOS.read_text(encoding="utf-8").splitlines() if line.strip()]
    empty = {"video_id": "nothing-left", "title": "https://bit.ly/x", "tags": [], "description": ""}
    answers = predict("--input", "-", stdin="\n".join(json.dumps(r) for r in [*rows, empty]))

    scored = score_model(DEFAULT_MODEL_DIR, [VIDEOS], kind=None)
    assert len(answers) == len(rows) + 1 and len(scored.examples) == len(rows)
    assert [a["video_id"] for a in answers[:-1]] == [r["video_id"] for r in rows]
    assert [a["top_label"] for a in answers[:-1]] == scored.predicted
    confidences = scored.classifier.confidence(scored.logits)
    assert np.allclose([a["confidence"] for a in answers[:-1]], confidences, atol=1e-3)
    for answer in answers[:-1]:
        scores = answer["scores"]
        assert list(scores) == list(scored.classifier.labels)
        over = {label for label, s in scores.items() if s["score"] >= s["threshold"]}
        assert set(answer["categories"]) == over | {answer["top_label"]}
    assert answers[-1] == {"row": len(rows), "error_type": "empty-text",
                           "error_message": "no text left after cleaning title, tags and description"}


def test_one_upload_from_the_command_line_is_answered_like_the_same_row() -> None:
    row = {"title": "Gol de Neymar contra o Flamengo", "tags": ["futebol", "brasileirão"], "description": ""}
    (from_options,) = predict("--title", row["title"], "--tags", ",".join(row["tags"]))
    (from_row,) = predict("--input", "-", stdin=json.dumps(row))
    assert from_options == from_row
    assert from_row["text"] == "Gol de Neymar contra o Flamengo. futebol, brasileirão"
