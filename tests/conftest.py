"""Fixtures: bring your own broker and Redis through the environment, otherwise start throwaway ones.

- Kafka: `KAFKA_BOOTSTRAP_SERVERS` when set; else a local Tansu broker for the session.
- Redis: `REDIS_URL` when it answers (default redis://127.0.0.1:6379/15); else a redis-server on a
  free port when the binary is installed; else Redis tests skip with the reason.
- Shared data: `SHARED_DATA_DIR` or ../shared/data beside the repo; tests that need it skip without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from worker.localbroker import LocalBroker, free_port
from worker.settings import REPO_ROOT, Settings

SHARED_DATA = Path(os.environ.get("SHARED_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    with LocalBroker() as broker:
        yield broker.bootstrap


def start_redis_server(port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis answers and redis-server is not installed")
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        yield url
        return
    except redis.RedisError:
        pass
    port = free_port()
    process = start_redis_server(port)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()


@pytest.fixture()
def unique_name(request: pytest.FixtureRequest) -> str:
    """A topic/group-friendly name unique to this test."""
    return f"{re.sub(r'[^a-zA-Z0-9]+', '-', request.node.name)[:60]}-{uuid.uuid4().hex[:6]}"


@pytest.fixture()
def make_settings(kafka_bootstrap: str, redis_url: str, unique_name: str) -> Callable[..., Settings]:
    """Settings on the session's broker and Redis, with topics and group unique to the test."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "kafka_bootstrap_servers": kafka_bootstrap,
            "kafka_session_timeout_ms": 6000,
            "redis_url": redis_url,
            "worker_input_topic": f"{unique_name}-in",
            "worker_output_topic": f"{unique_name}-out",
            "worker_dlq_topic": f"{unique_name}-dlq",
            "worker_group_id": f"{unique_name}-group",
            "worker_metrics_port": 0,
            "worker_log_format": "json",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make
