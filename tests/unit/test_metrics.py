"""The worker's Prometheus metrics and the category-drift monitor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import generate_latest

from worker.drift import CategoryDrift, jensen_shannon_bits
from worker.metrics import Metrics, normalize_language

LABELS = ["music", "sports", "gaming", "news"]
PRIOR = [0.4, 0.3, 0.2, 0.1]


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def draw(distribution: list[float], n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return list(rng.choice(LABELS, size=n, p=distribution))


# --- Jensen-Shannon -----------------------------------------------------------------


def test_jsd_is_zero_for_equal_and_one_for_disjoint_distributions() -> None:
    p = np.array([0.5, 0.5, 0.0])
    assert jensen_shannon_bits(p, p.copy()) == pytest.approx(0.0, abs=1e-12)
    assert jensen_shannon_bits(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_jsd_matches_the_textbook_value_and_is_symmetric() -> None:
    p, q = np.array([0.9, 0.1]), np.array([0.5, 0.5])
    m = (p + q) / 2
    expected = 0.5 * sum(p * np.log2(p / m)) + 0.5 * sum(q * np.log2(q / m))
    assert jensen_shannon_bits(p, q) == pytest.approx(expected)
    assert jensen_shannon_bits(q, p) == pytest.approx(expected)


def test_jsd_normalises_counts() -> None:
    assert jensen_shannon_bits(np.array([9.0, 1.0]), np.array([1.0, 1.0])) == pytest.approx(
        jensen_shannon_bits(np.array([0.9, 0.1]), np.array([0.5, 0.5]))
    )


# --- CategoryDrift --------------------------------------------------------------------


def test_drift_is_small_when_predictions_follow_the_prior_and_large_when_they_shift() -> None:
    drift = CategoryDrift(LABELS, PRIOR, window=2000, min_samples=100)
    for label in draw(PRIOR, 2000, seed=1):
        drift.observe("en", label)
    for label in draw([0.05, 0.05, 0.1, 0.8], 2000, seed=2):
        drift.observe("de", label)
    stable, shifted = drift.divergence("en"), drift.divergence("de")
    assert stable is not None and shifted is not None
    assert stable < 0.005  # expected sampling noise ~ (K-1)/(8 N ln2) = 0.00027
    assert shifted > 0.2


def test_drift_needs_min_samples() -> None:
    drift = CategoryDrift(LABELS, PRIOR, window=50, min_samples=10)
    for _ in range(9):
        drift.observe("fr", "music")
    assert drift.divergence("fr") is None
    drift.observe("fr", "music")
    assert drift.divergence("fr") == pytest.approx(
        jensen_shannon_bits(np.array([1.0, 0, 0, 0]), np.array(PRIOR))
    )


def test_drift_window_forgets_old_predictions() -> None:
    drift = CategoryDrift(LABELS, PRIOR, window=10, min_samples=10)
    for _ in range(10):
        drift.observe("es", "news")
    for _ in range(10):
        drift.observe("es", "music")
    assert drift.samples("es") == 10
    distribution = drift.distribution("es")
    assert distribution is not None
    assert distribution.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_labels_outside_the_prior_count_as_drift() -> None:
    drift = CategoryDrift(LABELS, PRIOR, window=10, min_samples=10)
    for _ in range(10):
        drift.observe("en", "not-a-trained-label")
    assert drift.divergence("en") == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("labels", "prior"), [([], []), (["a"], [0.5, 0.5]), (["a", "b"], [-1.0, 2.0]), (["a"], [0.0])]
)
def test_drift_rejects_bad_priors(labels: list[str], prior: list[float]) -> None:
    with pytest.raises(ValueError):
        CategoryDrift(labels, prior)


# --- Metrics ---------------------------------------------------------------------------


def test_flow_counters_and_histograms() -> None:
    m = Metrics()
    m.consumed(5)
    m.produced(3)
    m.dead_lettered("avro-decode")
    m.dead_lettered("avro-decode")
    m.dead_lettered("empty-text")
    m.batch(size=3, seconds=0.2, embed_seconds=0.15)
    m.end_to_end([1.5, 0.5, -2.0])
    m.cache(hits=2, misses=1)
    m.cache_error()
    assert value(m, "videocat_events_consumed_total") == 5
    assert value(m, "videocat_events_produced_total") == 3
    assert value(m, "videocat_events_dead_lettered_total", reason="avro-decode") == 2
    assert value(m, "videocat_events_dead_lettered_total", reason="empty-text") == 1
    assert value(m, "videocat_batch_size_sum") == 3
    assert value(m, "videocat_batch_duration_seconds_sum") == pytest.approx(0.2)
    assert value(m, "videocat_embed_duration_seconds_sum") == pytest.approx(0.15)
    assert value(m, "videocat_end_to_end_latency_seconds_count") == 3
    assert value(m, "videocat_end_to_end_latency_seconds_sum") == pytest.approx(2.0)  # skew clamped to 0
    assert value(m, "videocat_cache_hits_total") == 2
    assert value(m, "videocat_cache_misses_total") == 1
    assert value(m, "videocat_cache_errors_total") == 1


def test_predictions_by_language_and_category_and_low_confidence() -> None:
    m = Metrics(low_confidence=0.5)
    m.predictions(["en", "pt-BR", None, "EN"], ["music", "music", "news", "sports"], [0.9, 0.4, 0.2, 0.5])
    assert value(m, "videocat_predictions_total", language="en", category="music") == 1
    assert value(m, "videocat_predictions_total", language="en", category="sports") == 1
    assert value(m, "videocat_predictions_total", language="pt", category="music") == 1
    assert value(m, "videocat_predictions_total", language="unknown", category="news") == 1
    assert value(m, "videocat_low_confidence_predictions_total", language="pt") == 1
    assert value(m, "videocat_low_confidence_predictions_total", language="unknown") == 1
    assert value(m, "videocat_low_confidence_predictions_total", language="en") is None  # 0.5 is not below
    assert value(m, "videocat_low_confidence_threshold") == 0.5
    assert value(m, "videocat_confidence_count") == 4


def test_predictions_reject_misaligned_inputs() -> None:
    with pytest.raises(ValueError):
        Metrics().predictions(["en"], ["music", "news"], [0.9])


def test_language_label_cardinality_is_bounded() -> None:
    m = Metrics(max_languages=2)
    m.predictions(["en", "fr", "de", "en"], ["music"] * 4, [0.9] * 4)
    assert value(m, "videocat_predictions_total", language="en", category="music") == 2
    assert value(m, "videocat_predictions_total", language="other", category="music") == 1
    assert value(m, "videocat_predictions_total", language="de", category="music") is None


@pytest.mark.parametrize(
    ("raw", "code"), [("pt-BR", "pt"), ("zh_Hant", "zh"), (" FR ", "fr"), ("", "unknown"), ("x1!", "other")]
)
def test_normalize_language(raw: str, code: str) -> None:
    assert normalize_language(raw) == code


def test_drift_gauge_per_language_and_reset_on_new_prior() -> None:
    m = Metrics(drift_window=100, drift_min_samples=20)
    m.predictions(["en"] * 30, ["music"] * 30, [0.9] * 30)
    assert value(m, "videocat_category_drift", language="en") is None  # no prior yet
    m.set_prior(LABELS, PRIOR)
    m.predictions(["en"] * 19, ["news"] * 19, [0.9] * 19)
    assert value(m, "videocat_category_drift", language="en") is None  # below min_samples
    assert value(m, "videocat_category_drift_samples", language="en") == 19
    m.predictions(["en"], ["news"], [0.9])
    expected = jensen_shannon_bits(np.array([0, 0, 0, 1.0]), np.array(PRIOR))
    assert value(m, "videocat_category_drift", language="en") == pytest.approx(expected)
    assert m.drift("en") == pytest.approx(expected)
    m.set_prior(LABELS, PRIOR)  # a hot-swapped model starts a new window
    assert value(m, "videocat_category_drift", language="en") is None
    assert m.drift("en") is None


def test_model_info_is_replaced_on_hot_swap() -> None:
    m = Metrics()
    m.model_info("v1", "use-multilingual-v3-cnn@1a2b3c4d")
    m.model_info("v2", "use-multilingual-v3-cnn@1a2b3c4d")
    text = generate_latest(m.registry).decode()
    assert 'videocat_model_info{encoder="use-multilingual-v3-cnn@1a2b3c4d",version="v2"} 1.0' in text
    assert 'version="v1"' not in text
    loaded_at = value(m, "videocat_model_loaded_timestamp_seconds")
    assert loaded_at is not None and loaded_at > 0


def test_lag_per_partition_and_forgotten_on_revoke() -> None:
    m = Metrics()
    m.lags({("video-uploaded", 0): 10, ("video-uploaded", 1): 20})
    m.forget_partitions([("video-uploaded", 1), ("video-uploaded", 7)])  # 7 never reported: no error
    assert value(m, "videocat_consumer_lag", topic="video-uploaded", partition="0") == 10
    assert value(m, "videocat_consumer_lag", topic="video-uploaded", partition="1") is None


def test_paused_and_in_flight_gauges() -> None:
    m = Metrics()
    m.paused(True)
    m.in_flight(42)
    assert value(m, "videocat_consumer_paused") == 1
    assert value(m, "videocat_in_flight_events") == 42
    m.paused(False)
    assert value(m, "videocat_consumer_paused") == 0


def test_instances_do_not_share_a_registry() -> None:
    a, b = Metrics(), Metrics()
    a.consumed(1)
    assert value(b, "videocat_events_consumed_total") == 0


def test_every_series_is_prefixed() -> None:
    m = Metrics()
    names = {metric.name for metric in m.registry.collect()}
    assert names and all(name.startswith("videocat_") for name in names)
    assert not any(math.isnan(s.value) for metric in m.registry.collect() for s in metric.samples)
