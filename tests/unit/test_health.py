"""Liveness/readiness state and the HTTP server, through real requests on an ephemeral port."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from worker.health import Health, HealthServer, serve
from worker.metrics import Metrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(server: HealthServer, path: str, accept: str = "") -> tuple[int, str, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock: FakeClock) -> Health:
    return Health(liveness_timeout_s=60, startup_grace_s=300, clock=clock)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def server(health: Health, metrics: Metrics) -> Iterator[HealthServer]:
    with serve(0, health, metrics.registry, host="127.0.0.1") as running:
        yield running


def test_liveness_has_a_startup_grace_then_a_progress_timeout(health: Health, clock: FakeClock) -> None:
    clock.now += 299
    assert health.live()[0]
    clock.now += 2
    ok, details = health.live()
    assert not ok and details["started"] is False
    health.progressed()
    clock.now += 60
    assert health.live()[0]
    clock.now += 0.5
    ok, details = health.live()
    assert not ok and details["seconds_since_progress"] == pytest.approx(60.5)


def test_readiness_needs_partitions_model_and_broker(health: Health) -> None:
    assert health.ready() == (
        False,
        {"partitions_assigned": False, "model_loaded": False, "broker_reachable": False, "partitions": 0},
    )
    health.set_assigned(3)
    health.set_model_loaded(True)
    assert not health.ready()[0]
    health.set_broker_ok(True)
    assert health.ready()[0]
    health.set_assigned(0)  # all partitions revoked
    ok, details = health.ready()
    assert not ok and details["partitions_assigned"] is False


def test_port_zero_binds_an_ephemeral_port(server: HealthServer) -> None:
    assert server.port > 0


def test_healthz_answers_200_then_503_when_the_loop_stalls(
    server: HealthServer, health: Health, clock: FakeClock
) -> None:
    health.progressed()
    status, content_type, body = get(server, "/healthz")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body)["status"] == "ok"
    clock.now += 61
    status, _, body = get(server, "/healthz")
    assert status == 503
    assert json.loads(body)["status"] == "fail"


def test_readyz_reports_each_check(server: HealthServer, health: Health) -> None:
    status, _, body = get(server, "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["model_loaded"] is False
    health.set_assigned(2)
    health.set_model_loaded(True)
    health.set_broker_ok(True)
    status, _, body = get(server, "/readyz")
    assert status == 200
    assert json.loads(body) == {
        "status": "ok",
        "checks": {
            "partitions_assigned": True,
            "model_loaded": True,
            "broker_reachable": True,
            "partitions": 2,
        },
    }


def test_metrics_endpoint_serves_the_registry(server: HealthServer, metrics: Metrics) -> None:
    metrics.consumed(7)
    status, content_type, body = get(server, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert "videocat_events_consumed_total 7.0" in body
    status, content_type, body = get(server, "/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert "videocat_events_consumed_total 7.0" in body and body.rstrip().endswith("# EOF")


def test_assigned_partitions_gauge_follows_readiness_from_start_up(server: HealthServer, health: Health) -> None:
    """Reported by every serving replica, 0 included: the no-partition alert needs the zero."""
    _, _, body = get(server, "/metrics")
    assert "videocat_assigned_partitions 0.0" in body.splitlines()
    health.set_assigned(3)
    _, _, body = get(server, "/metrics")
    assert "videocat_assigned_partitions 3.0" in body.splitlines()
    assert json.loads(get(server, "/readyz")[2])["checks"]["partitions"] == 3
    health.set_assigned(0)  # revoked or lost
    _, _, body = get(server, "/metrics")
    assert "videocat_assigned_partitions 0.0" in body.splitlines()


def test_assigned_partitions_is_exported_once_per_registry(health: Health, metrics: Metrics) -> None:
    health.export_to(metrics.registry)
    health.export_to(metrics.registry)
    with serve(0, health, metrics.registry, host="127.0.0.1") as running:
        _, _, body = get(running, "/metrics")
    assert [line for line in body.splitlines() if line.startswith("videocat_assigned_partitions")] == [
        "videocat_assigned_partitions 0.0"
    ]
    assert metrics.registry.get_sample_value("videocat_assigned_partitions") == 0
    with pytest.raises(ValueError, match="videocat_assigned_partitions"):
        Health().export_to(metrics.registry)  # two states on one registry: a bug, not a silent pick


def test_unknown_path_is_404(server: HealthServer) -> None:
    assert get(server, "/nope")[0] == 404


def test_concurrent_probes_while_the_loop_writes(server: HealthServer, health: Health) -> None:
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            health.progressed()
            health.set_assigned(1)

    writer = threading.Thread(target=loop)
    writer.start()
    try:
        statuses = [get(server, "/healthz")[0] for _ in range(20)]
    finally:
        stop.set()
        writer.join()
    assert statuses == [200] * 20


def test_close_releases_the_port(health: Health, metrics: Metrics) -> None:
    running = serve(0, health, metrics.registry, host="127.0.0.1")
    port = running.port
    running.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
