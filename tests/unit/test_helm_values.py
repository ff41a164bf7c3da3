"""Integer settings render as digits at any size (a values file holds every number as a float64, which
`quote` prints as 1.2e+06 from 1e6 up) and parse as the worker's Settings; floats stay floats."""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import pytest

from tests.unit.helm_render import GPU_KEDA, one, render, with_values
from worker.settings import Settings

LARGE_INTEGERS = {
    "kafka__sessionTimeoutMs": (1_000_000, "KAFKA_SESSION_TIMEOUT_MS"),
    "kafka__maxPollIntervalMs": (1_200_000, "KAFKA_MAX_POLL_INTERVAL_MS"),
    "kafka__fetchWaitMaxMs": (1_000_000, "KAFKA_FETCH_WAIT_MAX_MS"),
    "worker__maxTokens": (1_000_000, "WORKER_MAX_TOKENS"),
    "worker__textMaxChars": (2_000_000, "WORKER_TEXT_MAX_CHARS"),
    "worker__batchMaxSize": (1_000_000, "WORKER_BATCH_MAX_SIZE"),
    "worker__batchMaxChars": (1_500_000, "WORKER_BATCH_MAX_CHARS"),
    "worker__batchMaxWaitMs": (3_000_000, "WORKER_BATCH_MAX_WAIT_MS"),
    "worker__maxInFlight": (2_000_000, "WORKER_MAX_IN_FLIGHT"),
    "worker__commitIntervalMs": (1_000_000, "WORKER_COMMIT_INTERVAL_MS"),
    "worker__cacheTtlS": (2_592_000, "WORKER_CACHE_TTL_S"),
    "worker__metricsPort": (1_000_000, "WORKER_METRICS_PORT"),  # not a port, but the rendering is the point
}


def settings_from(config: dict[str, str]) -> Settings:
    """What the worker parses from the ConfigMap's entries (and nothing from this process's env)."""
    return Settings(_env_file=None, **{name.lower(): text for name, text in config.items()})


def test_integer_settings_are_config_map_integers_at_any_size() -> None:
    changes = {key: float(number) for key, (number, _) in LARGE_INTEGERS.items()}  # what a values file holds
    changes["autoscaling__keda__lagThreshold"] = 1_000_000.0
    changes["metrics__prometheusRule__lagHigh"] = 5_000_000.0
    changes["metrics__prometheusRule__deadLetterFloor"] = 1_000_000.0
    changes["worker__lowConfidence"] = 0.4
    changes["worker__reviewSampleRate"] = 0.0125
    changes["worker__modelWatchIntervalS"] = 2.5
    docs = render(with_values(**changes))
    config = one(docs, "ConfigMap")["data"]
    for number, name in LARGE_INTEGERS.values():
        assert config[name] == str(number)
    settings = settings_from(config)
    for key, (number, name) in LARGE_INTEGERS.items():
        assert getattr(settings, name.lower()) == number, key
    # float settings stay floats
    assert (settings.worker_low_confidence, settings.worker_review_sample_rate) == (0.4, 0.0125)
    assert settings.worker_model_watch_interval_s == 2.5
    trigger = one(docs, "ScaledObject")["spec"]["triggers"][0]["metadata"]
    assert trigger["lagThreshold"] == "1000000"
    rules = {r["alert"]: r for r in one(docs, "PrometheusRule")["spec"]["groups"][0]["rules"]}
    lag_high, dead_letters = rules["VideocatConsumerLagHigh"], rules["VideocatDeadLetterRateHigh"]
    assert lag_high["expr"].endswith("> 5000000") and "5000000" in lag_high["annotations"]["summary"]
    assert dead_letters["expr"].endswith("> 1000000") and "1000000" in dead_letters["annotations"]["summary"]


@pytest.mark.parametrize("values", [None, GPU_KEDA], ids=["default", "gpu-keda"])
def test_the_config_map_parses_as_settings(values: dict[str, Any] | None) -> None:
    config = one(render(values), "ConfigMap")["data"]
    settings = settings_from(config)
    assert settings.worker_cache_ttl_s == 2_592_000 and settings.worker_batch_max_chars == 48_000


def test_integers_set_as_strings_or_int64_render_as_digits() -> None:
    # a quoted number in a values file is a string; --set passes int64
    docs = render(with_values(worker__maxInFlight="3000000", worker__maxTokens="256", kafka__maxPollIntervalMs=600000))
    config = one(docs, "ConfigMap")["data"]
    assert (config["WORKER_MAX_IN_FLIGHT"], config["WORKER_MAX_TOKENS"]) == ("3000000", "256")
    assert config["KAFKA_MAX_POLL_INTERVAL_MS"] == "600000"


@pytest.mark.parametrize(
    "key, bad", [("worker__batchMaxWaitMs", 2.5), ("worker__maxInFlight", "1e6"), ("worker__textMaxChars", "lots")]
)
def test_an_integer_setting_that_is_not_whole_fails_to_render(key: str, bad: Any) -> None:
    # rather than being truncated or zeroed by `int64` on its way to the pod
    name = key.replace("__", ".")
    with pytest.raises(helm.HelmError, match=re.escape(name) + " must be a whole number"):
        render(with_values(**{key: bad}))
