"""One batch of uploads -> one `Categorized` per upload: embed (with cache), classify, label.

No Kafka here: the loop hands a batch in and sends what comes out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from worker.cache import EmbeddingCache
from worker.classify import Classifier, categorize
from worker.embed import Embedded, embed_with_cache
from worker.encoders import Encoder
from worker.language import language_of
from worker.records import Categorized, CategoryScore, Upload


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    results: list[Categorized]
    embedded: Embedded
    seconds: float


def categorize_batch(
    batch: Sequence[Upload], encoder: Encoder, cache: EmbeddingCache, classifier: Classifier
) -> BatchOutcome:
    started = time.perf_counter()
    events = [u.event for u in batch]
    embedded = embed_with_cache([u.text for u in batch], [e.video_id for e in events], encoder, cache)
    probabilities = classifier.predict(embedded.vectors)
    labelled = categorize(probabilities, classifier.labels, classifier.thresholds)
    now_ms = int(time.time() * 1000)
    results = []
    for upload, key, labels in zip(batch, embedded.keys, labelled, strict=True):
        scores = tuple(CategoryScore(label, float(score)) for label, score in labels)
        results.append(
            Categorized(
                video_id=upload.event.video_id,
                categories=scores,
                top_label=scores[0].label,
                top_score=scores[0].score,
                language=language_of(upload.event.language, upload.text),
                model_version=classifier.version,
                embedding_key=key,
                event_time_ms=upload.event.uploaded_at_ms,
                processed_time_ms=now_ms,
                source=upload.source,
            )
        )
    return BatchOutcome(results, embedded, time.perf_counter() - started)
