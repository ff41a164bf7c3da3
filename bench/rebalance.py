"""Rebalance stall: how long a group rebalance waits on a worker that holds a full backlog.

A worker (in this process; the encoder of the settings, TF by default, and the starter head) is given
N uploads whose texts are distinct (every one a cache miss) on one partition, with the default batch
size and in-flight limit. Once it holds its in-flight limit, a bare member joins the group: the eager
protocol revokes every member's partitions, and the round ends only when every member has finished its
revoke, so the figure is the time from that join to the newcomer's assignment. The newcomer takes the
partition (its client id sorts first) and never processes it; when it leaves, the worker reads the
partition again from its committed offset and finishes. Outputs per upload count the duplicates.
Uses a local Tansu broker and the Redis at REDIS_URL (default redis://127.0.0.1:6379/15).

    .venv/bin/python bench/rebalance.py [--events 6000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline import make_uploads, metadata_pool, run_settings
from tests.integration.worker_harness import Newcomer, metric, read_to_end, wait_for
from worker.app import build_worker
from worker.localbroker import LocalBroker
from worker.logs import configure_logging
from worker.readback import read_records
from worker.sample import produce_uploads
from worker.settings import Settings
from worker.topics import ensure_topics, worker_topics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=6000)
    args = parser.parse_args()
    configure_logging("json", "warning")
    run = f"rebalance-{uuid.uuid4().hex[:6]}"
    with LocalBroker() as broker:
        settings = run_settings(broker.bootstrap, run, kafka_session_timeout_ms=6000)
        ensure_topics(settings, worker_topics(settings), partitions=1)
        uploads = make_uploads(args.events, run, metadata_pool())
        produce_uploads(settings, uploads)
        figures: dict[str, object] = {"events": args.events, "encoder": settings.worker_encoder.value,
                                      "cpu_count": os.cpu_count(), "max_in_flight": settings.worker_max_in_flight,
                                      "max_poll_interval_s": settings.kafka_max_poll_interval_ms / 1000}
        with build_worker(settings) as worker:
            thread = threading.Thread(target=worker.run, name="worker", daemon=True)
            thread.start()
            try:
                full = 0.9 * settings.worker_max_in_flight
                wait_for(lambda: metric(worker, "videocat_in_flight_events") >= full
                         and metric(worker, "videocat_events_produced_total") > 0, 600, "a full backlog held")
                figures["in_flight_at_join"] = int(metric(worker, "videocat_in_flight_events"))
                produced_before = metric(worker, "videocat_events_produced_total")
                newcomer = Newcomer(settings)
                joined = time.monotonic()
                newcomer.join()
                wait_for(lambda: bool(newcomer.assigned_at), 600, "the newcomer's assignment")
                figures["stall_s"] = round(newcomer.assigned_at[0] - joined, 1)
                figures["produced_during_stall"] = int(metric(worker, "videocat_events_produced_total")
                                                       - produced_before)
                figures["handed_back"] = int(metric(worker, "videocat_events_handed_back_total"))
                newcomer.leave()
                figures["outputs_per_upload"] = outputs_per_upload(settings, len(uploads))
            finally:
                worker.request_stop()
                thread.join(120)
    print(json.dumps(figures))


def outputs_per_upload(settings: Settings, count: int) -> dict[str, int]:
    """How many uploads have one output, two, ...: once every upload has one, the topic is read again to its
    end, so that outputs written after that are counted too."""
    seen: set[str] = set()
    for record in read_records(settings, settings.worker_output_topic, "VideoCategorized", idle_timeout_s=600,
                               until=lambda _r: len(seen) >= count):
        seen.add(record["video_id"])
    outputs = Counter(m.key() for m in read_to_end(settings, settings.worker_output_topic, timeout_s=60))
    return {str(times): uploads for times, uploads in sorted(Counter(outputs.values()).items())}


if __name__ == "__main__":
    main()
