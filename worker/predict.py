"""`predict`: categorize uploads given as JSON rows exactly as the worker would, without Kafka or Redis.

For "why did this video get that category?": each row goes through the worker's own steps (build_texts
with the head's budgets and views, the encoder, `categorize_batch`), and the answer shows what the
head saw (the text) and every label's score beside its threshold, not only the labels that passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import redis

from worker.app import embedding_cache
from worker.cache import EmbeddingCache
from worker.categorize import categorize_batch
from worker.classify import Classifier, load_classifier, sigmoid
from worker.decode import InvalidEvent, upload_of
from worker.encoders import Encoder, load_encoder, muse_identity
from worker.records import Categorized, SourceRef, Upload
from worker.settings import Settings
from worker.text import tag_list

BATCH = 128


@dataclass(frozen=True)
class Predictor:
    """What the worker would load for this head and these settings, less Kafka (and Redis, unless given)."""

    classifier: Classifier
    encoder: Encoder
    cache: EmbeddingCache  # keyed as the worker keys it; without a Redis client every text is embedded
    text_max_chars: int


def load_predictor(model_dir: Path, settings: Settings, client: redis.Redis | None = None) -> Predictor:
    classifier = load_classifier(model_dir, muse_identity())
    budget = settings.text_budget(classifier.text_budget)
    encoder = load_encoder(settings, budget.max_tokens)
    cache = embedding_cache(settings, encoder.identity, classifier, client)
    return Predictor(classifier, encoder, cache, budget.max_chars)


def upload_of_row(row: dict[str, Any], index: int, predictor: Predictor) -> Upload:
    """One JSON row (the VideoUploaded fields; the training data's layout) as the decoder builds it."""
    record = {"video_id": f"row-{index}", **row, "uploaded_at": 0}
    if isinstance(row.get("tags"), str):
        record["tags"] = list(tag_list(row["tags"]))
    return upload_of(record, SourceRef("predict", 0, index), predictor.text_max_chars,
                     predictor.classifier.embed_views)


def predict_rows(rows: Iterable[dict[str, Any]], predictor: Predictor) -> Iterator[dict[str, Any]]:
    """One answer per row, in order: the worker's categories, confidence and language, the text, every
    label's score and threshold; or the dead-letter reason the worker would give."""
    pending: list[tuple[int, Upload | InvalidEvent]] = []
    for index, row in enumerate(rows):
        try:
            pending.append((index, upload_of_row(row, index, predictor)))
        except InvalidEvent as error:
            pending.append((index, error))
        if len(pending) == BATCH:
            yield from _answers(pending, predictor)
            pending = []
    yield from _answers(pending, predictor)


def _answers(pending: list[tuple[int, Upload | InvalidEvent]], predictor: Predictor) -> Iterator[dict[str, Any]]:
    classifier = predictor.classifier
    uploads = [item for _, item in pending if isinstance(item, Upload)]
    if not uploads:
        answered: Iterator[tuple[Upload, Categorized, np.ndarray]] = iter(())
    else:
        outcome = categorize_batch(uploads, predictor.encoder, predictor.cache, classifier)
        scores = sigmoid(classifier.logits(outcome.embedded.vectors))
        answered = zip(uploads, outcome.results, scores, strict=True)
    for index, item in pending:
        if isinstance(item, InvalidEvent):
            yield {"row": index, "error_type": item.reason, "error_message": str(item)}
            continue
        upload, result, row_scores = next(answered)
        yield {
            "row": index, "video_id": result.video_id, "model_version": result.model_version,
            "language": result.language, "top_label": result.top_label, "confidence": round(result.confidence, 4),
            "categories": [c.label for c in result.categories], "text": upload.text,
            "scores": {label: {"score": round(float(s), 4), "threshold": round(float(t), 4)}
                       for label, s, t in zip(classifier.labels, row_scores, classifier.thresholds, strict=True)},
        }
