"""Throughput of at-least-once vs exactly-once (Kafka transactions) on the same backlog.

For each mode: a fresh topic with the same N re-upload events (embedding-cache hits, so the delivery
path dominates, not the encoder), one worker in this process, timed from its first committed offset
to the last. Modes alternate for `--rounds` rounds; the median of each is printed (the machine is
shared and noisy: compare medians, and look at the spread).

    .venv/bin/python bench/delivery_modes.py [--events 20000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog

from tests.chaos.harness import reupload_events
from tests.integration.worker_harness import committed_total, group_reader, running_worker
from worker.localbroker import LocalBroker
from worker.sample import produce_uploads
from worker.settings import DeliveryMode, Settings
from worker.topics import ensure_topics, worker_topics

PARTITIONS = 6


def events_per_second(bootstrap: str, mode: DeliveryMode, events: int) -> float:
    name = f"modes-{uuid.uuid4().hex[:6]}"
    settings = Settings(kafka_bootstrap_servers=bootstrap, worker_delivery=mode,
                        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
                        worker_input_topic=f"{name}-in", worker_output_topic=f"{name}-out",
                        worker_dlq_topic=f"{name}-dlq", worker_group_id=f"{name}-group",
                        worker_transactional_id=f"{name}-0", worker_metrics_port=0)
    ensure_topics(settings, worker_topics(settings), partitions=PARTITIONS)
    produce_uploads(settings, reupload_events(events, 60, name))
    watcher = group_reader(settings)
    try:
        with running_worker(settings):
            while (first := committed_total(settings, PARTITIONS, watcher)) == 0:
                time.sleep(0.05)
            started = time.monotonic()
            while committed_total(settings, PARTITIONS, watcher) < events:
                time.sleep(0.05)
            return (events - first) / (time.monotonic() - started)
    finally:
        watcher.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rates: dict[DeliveryMode, list[float]] = {mode: [] for mode in DeliveryMode}
    with LocalBroker() as broker:
        for round_ in range(args.rounds):
            for mode in DeliveryMode:
                rate = events_per_second(broker.bootstrap, mode, args.events)
                print(f"round {round_ + 1} {mode.value:>14}: {rate:8.0f} events/s", flush=True)
                rates[mode].append(rate)
    at_least_once = statistics.median(rates[DeliveryMode.AT_LEAST_ONCE])
    exactly_once = statistics.median(rates[DeliveryMode.EXACTLY_ONCE])
    print(f"median: at-least-once {at_least_once:.0f} events/s, exactly-once {exactly_once:.0f} events/s "
          f"(exactly-once cost {100 * (1 - exactly_once / at_least_once):+.0f}%)")


if __name__ == "__main__":
    main()
