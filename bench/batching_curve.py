"""Throughput and end-to-end latency against the batch's max wait (and max size).

For each WORKER_BATCH_MAX_WAIT_MS value: drain a pre-produced backlog (max throughput), then
pace a producer at a fixed rate (default: half the first measured throughput) and report
p50/p95/p99 latency. Uses the same worker subprocess and helpers as bench/pipeline.py.

    .venv/bin/python bench/batching_curve.py --waits 10,25,50,100,200 --events 3000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import make_uploads, metadata_pool, paced_latencies, settings_of, timed_drain

from worker.localbroker import LocalBroker, free_port
from worker.topics import ensure_topics, worker_topics


def measure(bootstrap: str, wait_ms: int, batch: int, events: int, rate: float | None, seconds: float) -> dict:
    run, port = uuid.uuid4().hex[:8], free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WORKER_INPUT_TOPIC": f"curve-{run}-in",
           "WORKER_OUTPUT_TOPIC": f"curve-{run}-out", "WORKER_DLQ_TOPIC": f"curve-{run}-dlq",
           "WORKER_GROUP_ID": f"curve-{run}", "WORKER_METRICS_PORT": str(port), "WORKER_LOG_LEVEL": "warning",
           "KAFKA_SESSION_TIMEOUT_MS": "6000", "WORKER_BATCH_MAX_WAIT_MS": str(wait_ms),
           "WORKER_BATCH_MAX_SIZE": str(batch)}
    settings = settings_of(env)
    ensure_topics(settings, worker_topics(settings), partitions=4)
    pool = metadata_pool()
    drain = timed_drain(settings, env, port, make_uploads(events, f"{run}a", pool), broker_pid=None)
    throughput, batch_mean = events / drain.seconds, drain.batch_mean
    rate = rate or throughput / 2
    paced = make_uploads(int(rate * seconds), f"{run}b", pool)
    latencies = paced_latencies(settings, env, port, paced, rate)
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    return {"max_wait_ms": wait_ms, "batch_max_size": batch, "events_per_s": round(throughput, 1),
            "batch_size_mean": round(batch_mean, 1), "paced_rate_per_s": round(rate, 1),
            "p50_ms": round(float(p50), 1), "p95_ms": round(float(p95), 1), "p99_ms": round(float(p99), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waits", default="10,25,50,100,200")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rate", type=float, help="paced rate (events/s); default half the first throughput")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    with LocalBroker() as broker:
        rate = args.rate
        for wait in (int(w) for w in args.waits.split(",")):
            row = measure(broker.bootstrap, wait, args.batch, args.events, rate, args.seconds)
            rate = rate or row["paced_rate_per_s"]  # the same load for every point of the curve
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
