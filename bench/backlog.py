"""Backlog drain: peak RSS of one worker (`python -m worker run`) while it drains a 100,000-event backlog.

Everything is produced before the worker starts. RSS is sampled every 0.2 s; with backpressure
(`WORKER_MAX_IN_FLIGHT`) it must stay flat whatever the backlog size. Uses a local Tansu broker and
the Redis at REDIS_URL (default redis://127.0.0.1:6379/15); most events are re-uploads (cache hits).

    .venv/bin/python bench/backlog.py [--events 100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.chaos.harness import reupload_events, settings_env
from tests.integration.worker_harness import committed_total
from worker.localbroker import LocalBroker
from worker.sample import produce_uploads
from worker.settings import REPO_ROOT, Settings
from worker.topics import ensure_topics, worker_topics

PARTITIONS = 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--distinct-texts", type=int, default=200)
    args = parser.parse_args()
    name = f"backlog-{uuid.uuid4().hex[:6]}"
    with LocalBroker() as broker:
        settings = Settings(kafka_bootstrap_servers=broker.bootstrap,
                            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
                            worker_input_topic=f"{name}-in", worker_output_topic=f"{name}-out",
                            worker_dlq_topic=f"{name}-dlq", worker_group_id=f"{name}-group",
                            worker_metrics_port=0, worker_log_format="json", worker_log_level="warning")
        ensure_topics(settings, worker_topics(settings), partitions=PARTITIONS)
        started = time.monotonic()
        produce_uploads(settings, reupload_events(args.events, args.distinct_texts, name))
        print(f"produced {args.events} events in {time.monotonic() - started:.1f}s; "
              f"max in flight {settings.worker_max_in_flight}, batch {settings.worker_batch_max_size}", flush=True)
        worker = subprocess.Popen([sys.executable, "-m", "worker", "run"], cwd=REPO_ROOT,
                                  env={**os.environ, **settings_env(settings)})
        process = psutil.Process(worker.pid)
        samples: list[tuple[float, int, int]] = []  # (seconds, rss bytes, committed)
        started, next_check, done = time.monotonic(), 0.0, 0
        try:
            while done < args.events and worker.poll() is None:
                now = time.monotonic() - started
                if now >= next_check:
                    done, next_check = committed_total(settings, PARTITIONS), now + 1.0
                samples.append((now, process.memory_info().rss, done))
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(60)
    report(samples, args.events)


def report(samples: list[tuple[float, int, int]], events: int) -> None:
    mib = 1024 * 1024
    first = next((s for s in samples if s[2] > 0), samples[-1])
    end = samples[-1]
    rate = (end[2] - first[2]) / max(1e-9, end[0] - first[0])
    print(f"drained {end[2]}/{events} events in {end[0]:.1f}s ({rate:.0f} events/s once started)")
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        at = next(s for s in samples if s[2] >= max(1, fraction * end[2]))
        print(f"  {fraction:4.0%} committed at {at[0]:6.1f}s: RSS {at[1] / mib:7.1f} MiB")
    print(f"peak RSS {max(s[1] for s in samples) / mib:.1f} MiB "
          f"(RSS when draining began {first[1] / mib:.1f} MiB)")


if __name__ == "__main__":
    main()
