"""One batch of uploads -> one `Categorized` per upload: embed (with cache), classify, label.

No Kafka here: the loop hands a batch in and sends what comes out. In two halves for the
loop, which overlaps them with other work: `start_batch` (cache lookup, encoder started on
the misses) and `label_batch` (classify and label once the embeddings are there); the
classifier is the one the batch started with, so a model swap never splits a batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from worker.cache import EmbeddingCache
from worker.classify import Classifier, rank_labels
from worker.embed import Embedded, EmbeddingJob
from worker.encoders import Encoder
from worker.language import languages_of
from worker.records import Categorized, CategoryScore, Upload


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    uploads: Sequence[Upload]
    results: list[Categorized]  # one per upload, in the same order
    embedded: Embedded
    seconds: float


@dataclass(frozen=True, slots=True)
class StartedBatch:
    batch: Sequence[Upload]
    classifier: Classifier
    embedding: EmbeddingJob
    started: float


def start_batch(batch: Sequence[Upload], encoder: Encoder, cache: EmbeddingCache, classifier: Classifier,
                executor: Executor | None = None) -> StartedBatch:
    started = time.perf_counter()
    job = EmbeddingJob([u.text for u in batch], [u.event.video_id for u in batch], encoder, cache, executor,
                       [u.embed_with for u in batch])
    return StartedBatch(batch, classifier, job, started)


def categorize_batch(
    batch: Sequence[Upload], encoder: Encoder, cache: EmbeddingCache, classifier: Classifier
) -> BatchOutcome:
    """Both halves, in the caller's thread."""
    started = start_batch(batch, encoder, cache, classifier)
    return label_batch(started, started.embedding.result())


def label_batch(started: StartedBatch, embedded: Embedded) -> BatchOutcome:
    batch, classifier = started.batch, started.classifier
    logits = classifier.logits(embedded.vectors)
    labelled = rank_labels(logits, classifier.labels, classifier.thresholds)
    confidences = classifier.confidence(logits)
    now_ms = int(time.time() * 1000)
    languages = languages_of([u.event.language for u in batch], [u.text for u in batch])
    results = []
    for upload, key, labels, confidence, language in zip(
        batch, embedded.keys, labelled, confidences, languages, strict=True
    ):
        scores = tuple(CategoryScore(label, float(score)) for label, score in labels)
        results.append(
            Categorized(
                video_id=upload.event.video_id,
                categories=scores,
                top_label=scores[0].label,
                top_score=scores[0].score,
                confidence=float(confidence),
                language=language,
                model_version=classifier.version,
                embedding_key=key,
                embedding_stored=embedded.stored,
                event_time_ms=upload.event.uploaded_at_ms,
                processed_time_ms=now_ms,
                source=upload.source,
            )
        )
    return BatchOutcome(batch, results, embedded, time.perf_counter() - started.started)
