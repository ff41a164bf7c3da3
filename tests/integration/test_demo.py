"""`make run`: the demo a newcomer runs first, as a subprocess with its own local broker."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from worker.sample import sample_uploads
from worker.settings import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# librdkafka's own log lines, e.g. "%3|1795291847.456|FAIL|rdkafka#producer-4| ... Connection refused"
LIBRDKAFKA_LOG = re.compile(r"%\d\|[\d.]+\|\w+\|rdkafka#")
# TensorFlow's raw C++ lines, e.g. "E0000 00:00:1795295267.270951   17441 cuda_platform.cc:52] failed call to cuInit"
ABSL_LOG = re.compile(r"[IWEF]\d{4} [\d:.]+ +\d+ \S+\] |WARNING: All log messages before absl")


def test_demo_categorizes_every_sample_and_logs_no_client_errors(redis_url: str) -> None:
    """Every sample comes back; no client outlives the broker, none knocks before it listens; TensorFlow's
    start-up lines are debug events, not raw lines between the log lines."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "", "REDIS_URL": redis_url, "WORKER_METRICS_PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "worker", "demo"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert re.search(r"categorized (\d+)/\1 uploads", output), output[-3000:]
    assert [line for line in output.splitlines() if LIBRDKAFKA_LOG.match(line)] == []
    assert [line for line in output.splitlines() if ABSL_LOG.match(line)] == []
    assert "encoder_loaded" in output


def test_demo_on_a_broker_with_earlier_outputs_counts_only_its_own(
    kafka_bootstrap: str, redis_url: str, unique_name: str
) -> None:
    """On a shared broker the output topic already holds an earlier run's records: the second run must
    show and count its own uploads, every line with a sample's title, not the earlier run's."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "REDIS_URL": redis_url,
           "WORKER_METRICS_PORT": "0", "WORKER_GROUP_ID": unique_name,
           **{f"WORKER_{kind}_TOPIC": f"{unique_name}-{kind.lower()}" for kind in ("INPUT", "OUTPUT", "DLQ")}}
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "worker", "demo"], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    shown = [line for line in done.stdout.splitlines() if line.startswith("[")]
    titles = {upload.title for upload in sample_uploads()}
    assert len(shown) == len(titles) and all(line.split("  ")[-1] in titles for line in shown), done.stdout
