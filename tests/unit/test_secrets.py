"""Secrets (`SecretStr` settings) never show up in logs, error messages or printed settings, also when
authentication fails for real: a Redis server that refuses the password, and a Kafka client configured
for SASL against a broker that does not speak it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from structlog.testing import capture_logs

from tests.conftest import start_redis_server
from tests.integration.worker_harness import running_worker
from worker.cache import EmbeddingCache, connect
from worker.localbroker import free_port
from worker.settings import Settings

REDIS_SECRET = "redis-pw-5f1c0ffee-do-not-print"
SASL_SECRET = "sasl-pw-7e57ab1e-do-not-print"
REGISTRY_SECRET = "registry-pw-0ddba11-do-not-print"
SECRETS = (REDIS_SECRET, SASL_SECRET, REGISTRY_SECRET)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
        assert secret[:12] not in text  # not even a prefix


def test_printed_settings_mask_every_secret() -> None:
    settings = Settings(redis_password=REDIS_SECRET, kafka_sasl_password=SASL_SECRET,
                        schema_registry_basic_auth=f"user:{REGISTRY_SECRET}", kafka_sasl_mechanism="PLAIN")
    for rendered in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert_no_secret(rendered)
    assert settings.kafka_common()["sasl.password"] == SASL_SECRET  # ...while the client still gets it


def test_a_refused_redis_password_is_not_in_logs_or_errors() -> None:
    port = free_port()
    server = start_redis_server(port)
    try:
        redis.Redis(port=port).config_set("requirepass", "the-right-password")
        settings = Settings(redis_url=f"redis://127.0.0.1:{port}/0", redis_password=REDIS_SECRET)
        client = connect(settings)
        with pytest.raises(redis.AuthenticationError) as refused:
            client.ping()
        assert_no_secret(f"{refused.value!r} {refused.value}")

        cache = EmbeddingCache(client, "encoder", ttl_s=60, log_interval_s=0)
        with capture_logs() as logs:
            assert cache.get_many(["a text"]) == [None]
        assert [e["event"] for e in logs] == ["cache_unavailable"]
        assert_no_secret(repr(logs))
    finally:
        server.terminate()


def test_a_failing_sasl_handshake_is_not_in_logs_or_errors(
    make_settings: Callable[..., Settings], capfd: pytest.CaptureFixture[str],
) -> None:
    """The test broker speaks PLAINTEXT only, so every SASL handshake fails; librdkafka's own log lines
    (written straight to stderr) are checked too."""
    settings = make_settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
                             kafka_sasl_username="worker", kafka_sasl_password=SASL_SECRET,
                             redis_password=REDIS_SECRET, worker_log_level="debug")
    with capture_logs() as logs, running_worker(settings) as worker:
        time.sleep(4)
        assert not worker.health.ready()[0]
    captured = capfd.readouterr()
    assert any(e["event"] == "worker_started" for e in logs)
    assert "SASL" in captured.err or any(e["event"] == "consumer_error" for e in logs), "no handshake failure seen"
    assert_no_secret(repr(logs) + captured.out + captured.err)
