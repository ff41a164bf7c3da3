"""What the worker serves is what `evaluate` scores: the same texts, embeddings and top labels.

The head is the starter with thresholds that make the top-label rule matter: every label at 0.999
but one at 0, so most top labels sit under their threshold while another label is over its own.
Low confidence is set high (0.8) so that the review topic gets a share of the uploads: exactly those
whose calibrated confidence, as evaluate's path computes it, is under 0.8. Each review copy carries
the upload's metadata, and a labelled copy is training data that reads as evaluate read the upload.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import redis

from tests.integration.worker_harness import read_outputs, read_to_end, running_worker
from worker.avro import load_schema, make_codec
from worker.classify import load_classifier, rank_labels, sigmoid
from worker.encoders import muse_identity
from worker.records import VideoUploaded
from worker.sample import produce_uploads
from worker.settings import DEFAULT_MODEL_DIR, Settings
from worker.topics import ensure_topics, worker_topics
from worker.training.data import read_for_evaluation
from worker.training.embed_cache import EmbeddingCache
from worker.training.pipeline import LazyEncoder, embed_as_served

pytestmark = pytest.mark.integration
VIDEOS = Path(__file__).resolve().parents[1] / "fixtures" / "videos_small.jsonl"
LOW_CONFIDENCE = 0.8


def uploads_of(path: Path) -> list[VideoUploaded]:
    run, now_ms = uuid.uuid4().hex[:8], int(time.time() * 1000)
    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    return [
        VideoUploaded(video_id=f"{row['video_id']}-{run}", title=row["title"], description=row["description"],
                      tags=tuple(row["tags"]), language=None, channel_id=None, uploaded_at_ms=now_ms)
        for row in rows
    ]


def starter_with_extreme_thresholds(folder: Path) -> Path:
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    meta["thresholds"] = [0.0 if label == meta["labels"][-1] else 0.999 for label in meta["labels"]]
    meta["version"] += "-thresholds-test"
    (folder / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder


def test_worker_serves_the_embeddings_and_top_labels_evaluate_scores(
    make_settings: Callable[..., Settings], unique_name: str, tmp_path: Path
) -> None:
    model_dir = starter_with_extreme_thresholds(tmp_path / "model")
    settings = make_settings(worker_model_dir=model_dir, worker_review_topic=f"{unique_name}-review",
                             worker_low_confidence=LOW_CONFIDENCE)
    ensure_topics(settings, worker_topics(settings))
    uploads = uploads_of(VIDEOS)
    produce_uploads(settings, uploads)
    with running_worker(settings) as worker:
        outputs = {o["video_id"]: o for o in read_outputs(settings, expected=len(uploads))}
        flagged = sum(sample.value for family in worker.metrics.registry.collect() for sample in family.samples
                      if sample.name == "videocat_low_confidence_predictions_total")
    review_copies = read_to_end(settings, settings.worker_review_topic, partitions=4)
    reviewed = {m.key().decode() for m in review_copies}
    codec, review_schema = make_codec(settings), load_schema("ReviewRequest")
    review_requests = [codec.loads(m.value(), m.headers(), review_schema, settings.worker_review_topic)
                       for m in review_copies]

    # evaluate's path: the model's text budgets and embed views, the training embedding cache (empty here)
    classifier = load_classifier(settings.worker_model_dir, muse_identity())
    examples = read_for_evaluation(VIDEOS, classifier.text_max_chars, classifier.embed_views)
    cache = EmbeddingCache(LazyEncoder(None, classifier.max_tokens), classifier.max_tokens, root=tmp_path / "cache")
    evaluated = embed_as_served(cache, examples)
    logits = classifier.logits(evaluated)
    assert len(examples) == len(uploads)
    top = logits.argmax(1)
    assert np.sum(sigmoid(logits)[np.arange(len(top)), top] < 0.999) >= 5  # the rule is exercised

    client = redis.Redis.from_url(settings.redis_url)
    served = [outputs[u.video_id] for u in uploads]
    stored = np.stack([np.frombuffer(client.get(o["embedding_key"]), dtype="<f4") for o in served])
    assert np.min(np.sum(stored * evaluated, axis=1)) > 0.9999
    assert [o["top_label"] for o in served] == [classifier.labels[i] for i in top]
    expected = rank_labels(classifier.logits(stored), classifier.labels, classifier.thresholds)
    assert [[c["label"] for c in o["categories"]] for o in served] == [[lab for lab, _ in row] for row in expected]

    chances = classifier.confidence(logits)
    np.testing.assert_allclose([o["confidence"] for o in served], chances, atol=1e-3)  # the event carries it
    unsure = {u.video_id for u, chance in zip(uploads, chances, strict=True) if chance < LOW_CONFIDENCE}
    assert 0 < len(unsure) < len(uploads)
    assert reviewed == unsure and flagged == len(unsure)

    # A reviewer sees the upload as sent and the head's answer; labelled, the copy is a training row.
    sent = {u.video_id: u for u in uploads}
    for request in review_requests:
        upload, output = sent[request["video_id"]], outputs[request["video_id"]]
        assert (request["title"], tuple(request["tags"]), request["description"]) == (
            upload.title, upload.tags, upload.description)
        assert request["top_label"] == output["top_label"] and request["categories"] == output["categories"]
        assert request["confidence"] == pytest.approx(output["confidence"]) and request["confidence"] < LOW_CONFIDENCE
    labelled = tmp_path / "reviewed.jsonl"
    labelled.write_text("".join(json.dumps({**r, "category": "Music"}, default=str) + "\n" for r in review_requests))
    rows = read_for_evaluation(labelled, classifier.text_max_chars, classifier.embed_views)
    evaluated_text = {u.video_id: ex.text for u, ex in zip(uploads, examples, strict=True)}
    assert [ex.text for ex in rows] == [evaluated_text[r["video_id"]] for r in review_requests]
    assert all(ex.labels == ("Music",) for ex in rows)
