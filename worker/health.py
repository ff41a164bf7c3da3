"""Liveness and readiness state, and the one HTTP server for /metrics, /healthz and /readyz.

Liveness answers "is the loop stuck?": the loop calls `Health.progressed()` on every
iteration (an idle poll counts), and /healthz fails once it has not for
`liveness_timeout_s`. Before the first iteration (model loading) a longer
`startup_grace_s` applies, so a slow start is not killed but a hung one still is.
Readiness answers "is this replica doing its job?": partitions assigned, model loaded,
broker reachable. Both endpoints answer 200 or 503 with a JSON body naming every check.

`serve` also exports the partition count the readiness check reads as the gauge
`videocat_assigned_partitions`, read at scrape time (so the gauge and /readyz never disagree).
Every replica reports it, 0 included, from start-up on: with no partition assigned anywhere (a
group that cannot form, brokers unreachable, an authorization failure) the per-partition lag
series are gone, and this gauge is what still says so (docs/operations.md, "Alerts").
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

ASSIGNED_PARTITIONS = "videocat_assigned_partitions"


class Health:
    """Thread-safe: the loop writes, the HTTP server threads read."""

    def __init__(
        self,
        liveness_timeout_s: float = 60.0,
        startup_grace_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._lock = threading.Lock()
        self._clock = clock
        self._liveness_timeout_s = liveness_timeout_s
        self._startup_grace_s = startup_grace_s
        self._started_at = clock()
        self._last_progress: float | None = None
        self._assigned = 0
        self._model_loaded = False
        self._broker_ok = False
        self._exported_to: list[CollectorRegistry] = []

    def progressed(self) -> None:
        with self._lock:
            self._last_progress = self._clock()

    def set_assigned(self, n_partitions: int) -> None:
        with self._lock:
            self._assigned = n_partitions

    def set_model_loaded(self, ok: bool) -> None:
        with self._lock:
            self._model_loaded = ok

    def set_broker_ok(self, ok: bool) -> None:
        with self._lock:
            self._broker_ok = ok

    def live(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            now = self._clock()
            if self._last_progress is None:
                waited = now - self._started_at
                ok = waited <= self._startup_grace_s
                return ok, {
                    "started": False,
                    "seconds_since_start": round(waited, 3),
                    "startup_grace_s": self._startup_grace_s,
                }
            idle = now - self._last_progress
            ok = idle <= self._liveness_timeout_s
            return ok, {
                "started": True,
                "seconds_since_progress": round(idle, 3),
                "liveness_timeout_s": self._liveness_timeout_s,
            }

    @property
    def assigned(self) -> int:
        with self._lock:
            return self._assigned

    # --- Prometheus collector: the registry calls these --------------------------------------
    def describe(self) -> Iterator[Metric]:
        yield self._assigned_family(0)

    def collect(self) -> Iterator[Metric]:
        yield self._assigned_family(self.assigned)

    @staticmethod
    def _assigned_family(value: int) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            ASSIGNED_PARTITIONS,
            "Input-topic partitions this replica holds (0 while starting, rebalancing, idle, or unable to join).",
            value=value,
        )

    def export_to(self, registry: CollectorRegistry) -> None:
        """Serve this state's metrics from `registry`; again for the same registry does nothing."""
        with self._lock:  # describe() takes no lock
            if any(r is registry for r in self._exported_to):
                return
            registry.register(self)
            self._exported_to.append(registry)

    def ready(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            checks = {
                "partitions_assigned": self._assigned > 0,
                "model_loaded": self._model_loaded,
                "broker_reachable": self._broker_ok,
            }
            return all(checks.values()), {**checks, "partitions": self._assigned}


class HealthServer:
    """A running server: `.port` is the bound port (useful with port 0), `.close()` stops it."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread):
        self._server = server
        self._thread = thread
        self.port: int = server.server_address[1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _handler_class(health: Health, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, encoder(registry), content_type)
            elif path in ("/healthz", "/livez"):
                self._send_check(*health.live())
            elif path == "/readyz":
                self._send_check(*health.ready())
            else:
                self._send(404, b'{"error": "not found"}\n', "application/json")

        def _send_check(self, ok: bool, details: dict[str, Any]) -> None:
            body = json.dumps({"status": "ok" if ok else "fail", "checks": details}).encode() + b"\n"
            self._send(200 if ok else 503, body, "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would flood the logs

    return Handler


def serve(port: int, health: Health, registry: CollectorRegistry, host: str = "0.0.0.0") -> HealthServer:
    """Start the server in a daemon thread; port 0 binds an ephemeral port.

    `health`'s own gauge (`videocat_assigned_partitions`) is added to `registry` here.
    """
    health.export_to(registry)
    server = ThreadingHTTPServer((host, port), _handler_class(health, registry))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="health-http", daemon=True)
    thread.start()
    return HealthServer(server, thread)
