"""Start-up exits. A worker stopped while it loads its models exits at once: in a container it is PID 1,
and the kernel drops a signal PID 1 has no handler for, so without one the pod would wait out its grace
period. A worker whose output schema is not registered in a lookup-only registry exits saying so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.registry_stub import lookup_only_registry
from worker.localbroker import free_port

pytestmark = pytest.mark.integration


def test_sigterm_while_the_models_load_exits_at_once() -> None:
    port = free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "WORKER_METRICS_PORT": str(port),
           "WORKER_CACHE_ENABLED": "false", "WORKER_LOG_FORMAT": "json"}
    worker = subprocess.Popen([sys.executable, "-m", "worker", "run"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # the health server answers once start-up has begun (it starts before the models load)
            assert worker.poll() is None and time.monotonic() < deadline, worker.stdout and worker.stdout.read()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 128 + signal.SIGTERM  # our handler's exit, not the default action's -15
        assert "stopped_during_startup" in (worker.stdout.read() if worker.stdout else "")
    finally:
        worker.kill()


def test_a_lookup_only_worker_whose_output_schema_is_not_registered_exits_naming_it() -> None:
    with lookup_only_registry() as registry:
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "WORKER_METRICS_PORT": "0",
               "WORKER_CACHE_ENABLED": "false", "WORKER_LOG_FORMAT": "json", "SCHEMA_REGISTRY_URL": registry.url,
               "SCHEMA_REGISTRY_AUTO_REGISTER": "false"}
        worker = subprocess.run([sys.executable, "-m", "worker", "run"], env=env, capture_output=True, text=True,
                                timeout=120)
    assert worker.returncode == 1, worker.stderr[-2000:]
    logged = worker.stdout + worker.stderr
    assert "output_schema_not_registered" in logged and "video-categorized-value" in logged
    assert "Traceback" not in logged
    assert registry.paths == ["/subjects/video-categorized-value"]  # looked up, never registered
