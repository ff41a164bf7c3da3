"""Prometheus metrics of the worker.

`Metrics` owns every `videocat_*` series on one `CollectorRegistry` (a fresh one per
instance unless one is given, so tests never collide); the loop calls its methods, the
HTTP server in `worker.health` exposes the registry (and adds `videocat_assigned_partitions` to it
from the readiness state). docs/operations.md lists the series.

The drift gauge's monitor is `worker.drift.CategoryDrift`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics

from worker.drift import CategoryDrift

if TYPE_CHECKING:
    from worker.categorize import BatchOutcome

# `_created` samples would double the series count; nothing here reads them (process-wide).
disable_created_metrics()

UNKNOWN_LANGUAGE = "unknown"
OTHER_LANGUAGE = "other"
_PRIMARY_SUBTAG = re.compile(r"^[a-z]{2,3}$")

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Upload -> output includes any backlog, so the buckets reach an hour.
END_TO_END_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


def normalize_language(language: str | None) -> str:
    """BCP-47 tag -> its lower-case primary subtag (`pt-BR` -> `pt`), else `unknown`/`other`."""
    if not language:
        return UNKNOWN_LANGUAGE
    primary = language.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if _PRIMARY_SUBTAG.match(primary) else OTHER_LANGUAGE


class Metrics:
    """Every metric the worker exports. Methods are called from the loop thread."""

    def __init__(
        self,
        low_confidence: float = 0.35,
        registry: CollectorRegistry | None = None,
        max_languages: int = 64,
        drift_window: int = 1000,
        drift_min_samples: int = 100,
    ):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.low_confidence = low_confidence
        self._max_languages = max_languages
        self._languages_seen: set[str] = set()
        self._drift_window = drift_window
        self._drift_min_samples = drift_min_samples
        self._drift: CategoryDrift | None = None
        self._build()

    def _build(self) -> None:
        r = self.registry
        self._consumed = Counter("videocat_events_consumed", "Input events consumed.", registry=r)
        self._produced = Counter("videocat_events_produced", "Categorized events produced.", registry=r)
        self._handed_back = Counter(
            "videocat_events_handed_back",
            "Events consumed, then left uncommitted at a revoke or stop for the next reader (consumed again).",
            registry=r,
        )
        self._dead = Counter(
            "videocat_events_dead_lettered", "Events sent to the DLQ.", ["reason"], registry=r
        )
        self._review = Counter(
            "videocat_events_sent_for_review", "Copies sent to the review topic, by reason.", ["reason"], registry=r
        )
        self._review_dropped = Counter(
            "videocat_review_copies_dropped", "Review copies the broker refused (dropped), by error code.", ["code"],
            registry=r,
        )
        self._commit_failures = Counter(
            "videocat_commit_failures", "Offset commits the broker refused or did not answer.", registry=r
        )
        self._held = Counter("videocat_registry_retries", "Messages held: the registry did not answer.", registry=r)
        self._batch_size = Histogram(
            "videocat_batch_size", "Events per batch.", buckets=BATCH_SIZE_BUCKETS, registry=r
        )
        self._batch_seconds = Histogram(
            "videocat_batch_duration_seconds", "Batch processing time.", buckets=SECONDS_BUCKETS, registry=r
        )
        self._embed_seconds = Histogram(
            "videocat_embed_duration_seconds",
            "Embedding time per batch.",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self._end_to_end = Histogram(
            "videocat_end_to_end_latency_seconds",
            "From the event's upload time to its output.",
            buckets=END_TO_END_BUCKETS,
            registry=r,
        )
        self._cache_hits = Counter("videocat_cache_hits", "Texts whose embedding was in the cache.", registry=r)
        self._cache_misses = Counter("videocat_cache_misses", "Texts the encoder embedded.", registry=r)
        self._cache_errors = Counter("videocat_cache_errors", "Cache calls that failed.", registry=r)
        self._predictions = Counter(
            "videocat_predictions",
            "Predictions by language and top category.",
            ["language", "category"],
            registry=r,
        )
        self._low_confidence = Counter(
            "videocat_low_confidence_predictions",
            "Predictions whose confidence (calibrated chance the top category is right) is below the threshold.",
            ["language"],
            registry=r,
        )
        self._confidence = Histogram(
            "videocat_confidence", "Calibrated chance the top category is right, per prediction.",
            buckets=SCORE_BUCKETS, registry=r,
        )
        threshold = Gauge("videocat_low_confidence_threshold", "The low-confidence threshold.", registry=r)
        threshold.set(self.low_confidence)
        self._model = Info("videocat_model", "The classifier head being served.", registry=r)
        self._model_loaded_at = Gauge(
            "videocat_model_loaded_timestamp_seconds", "When the served model was loaded.", registry=r
        )
        self._lag = Gauge(
            "videocat_consumer_lag", "Consumer lag in messages.", ["topic", "partition"], registry=r
        )
        self._paused = Gauge("videocat_consumer_paused", "1 while consumption is paused.", registry=r)
        self._in_flight = Gauge("videocat_in_flight_events", "Consumed but not yet acknowledged.", registry=r)
        self._drift_gauge = Gauge(
            "videocat_category_drift",
            "Jensen-Shannon divergence (bits) of recent top categories from the training prior.",
            ["language"],
            registry=r,
        )
        self._drift_samples = Gauge(
            "videocat_category_drift_samples", "Predictions in the drift window.", ["language"], registry=r
        )

    # --- flow ---------------------------------------------------------------------------
    def consumed(self, n: int) -> None:
        self._consumed.inc(n)

    def produced(self, n: int) -> None:
        self._produced.inc(n)

    def handed_back(self, n: int) -> None:
        self._handed_back.inc(n)

    def dead_lettered(self, reason: str) -> None:
        self._dead.labels(reason=reason).inc()

    def held_for_registry(self) -> None:
        self._held.inc()

    def sent_for_review(self, reason: str) -> None:
        self._review.labels(reason=reason).inc()

    def review_copy_dropped(self, code: str) -> None:
        self._review_dropped.labels(code=code).inc()

    def commit_failed(self) -> None:
        self._commit_failures.inc()

    def batch(self, size: int, seconds: float, embed_seconds: float) -> None:
        self._batch_size.observe(size)
        self._batch_seconds.observe(seconds)
        self._embed_seconds.observe(embed_seconds)

    def batch_sent(self, outcome: BatchOutcome) -> None:
        """What a batch whose outputs were sent reports: size and times, cache, produced, latency, predictions."""
        results, embedded = outcome.results, outcome.embedded
        now_ms = time.time() * 1000
        self.batch(len(results), outcome.seconds, embedded.encode_seconds)
        self.cache(embedded.hits, embedded.misses)
        self.produced(len(results))
        self.end_to_end([(now_ms - r.event_time_ms) / 1000 for r in results if r.event_time_ms])
        self.predictions([r.language for r in results], [r.top_label for r in results], [r.confidence for r in results])

    def end_to_end(self, seconds: Sequence[float]) -> None:
        for value in seconds:
            # Producer clocks may run ahead of ours: clamp rather than corrupt the sum.
            self._end_to_end.observe(max(0.0, value))

    def cache(self, hits: int, misses: int) -> None:
        self._cache_hits.inc(hits)
        self._cache_misses.inc(misses)

    def cache_error(self) -> None:
        self._cache_errors.inc()

    # --- model --------------------------------------------------------------------------
    def predictions(
        self, languages: Sequence[str | None], labels: Sequence[str], confidences: Sequence[float]
    ) -> None:
        if not len(languages) == len(labels) == len(confidences):
            raise ValueError("languages, labels and confidences must have the same length")
        touched: set[str] = set()
        for raw_language, label, confidence in zip(languages, labels, confidences, strict=True):
            language = self._bounded_language(raw_language)
            self._predictions.labels(language=language, category=label).inc()
            self._confidence.observe(confidence)
            if confidence < self.low_confidence:
                self._low_confidence.labels(language=language).inc()
            if self._drift is not None:
                self._drift.observe(language, label)
                touched.add(language)
        for language in touched:
            self._export_drift(language)

    def model_info(self, version: str, encoder: str) -> None:
        self._model.info({"version": version, "encoder": encoder})
        self._model_loaded_at.set(time.time())

    def set_prior(self, labels: Sequence[str], prior: Sequence[float]) -> None:
        """Start drift monitoring against a new prior; earlier windows are dropped."""
        self._drift = CategoryDrift(labels, prior, self._drift_window, self._drift_min_samples)
        self._drift_gauge.clear()
        self._drift_samples.clear()

    def drift(self, language: str | None) -> float | None:
        return None if self._drift is None else self._drift.divergence(normalize_language(language))

    # --- consumer -----------------------------------------------------------------------
    def lags(self, lags: dict[tuple[str, int], int]) -> None:
        for (topic, partition), lag in lags.items():
            self._lag.labels(topic=topic, partition=str(partition)).set(lag)

    def forget_partitions(self, partitions: Sequence[tuple[str, int]]) -> None:
        for topic, partition in partitions:
            self._lag.remove(topic, str(partition))  # a no-op for one never reported (prometheus-client >= 0.22)

    def paused(self, is_paused: bool) -> None:
        self._paused.set(1 if is_paused else 0)

    def in_flight(self, n: int) -> None:
        self._in_flight.set(n)

    # --- helpers ------------------------------------------------------------------------
    def _bounded_language(self, language: str | None) -> str:
        """Keep the `language` label's cardinality bounded whatever uploaders send."""
        code = normalize_language(language)
        if code in self._languages_seen:
            return code
        if len(self._languages_seen) >= self._max_languages:
            return OTHER_LANGUAGE
        self._languages_seen.add(code)
        return code

    def _export_drift(self, language: str) -> None:
        assert self._drift is not None
        self._drift_samples.labels(language=language).set(self._drift.samples(language))
        divergence = self._drift.divergence(language)
        if divergence is not None and math.isfinite(divergence):
            self._drift_gauge.labels(language=language).set(divergence)
