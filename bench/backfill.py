"""Backfill rate: `backfill-embeddings` over a window of N uploads, all keys missing, then all there.

A dry run first (read, decode, one EXISTS pipeline per batch). Then a run that embeds every upload
(texts distinct from any earlier run, so no text-cache hit): its rate is the encoder's, less the
reading, which does not overlap it. Then a run that finds every key and embeds nothing: what a generous
window costs per record outside the outage. Each run includes loading the encoder (its identity
names the keys; TensorFlow is imported before the clock starts). Uses a local Tansu broker and the Redis at
REDIS_URL (default redis://127.0.0.1:6379/15); real video metadata when ../shared is there.

    .venv/bin/python bench/backfill.py [--events 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline import make_uploads, metadata_pool, run_settings
from worker.backfill import run_backfill
from worker.localbroker import LocalBroker
from worker.logs import configure_logging
from worker.sample import produce_uploads
from worker.topics import ensure_topics

PARTITIONS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    configure_logging("json", "warning")
    run = f"backfill-{uuid.uuid4().hex[:6]}"
    with LocalBroker() as broker:
        settings = run_settings(broker.bootstrap, run)
        ensure_topics(settings, [settings.worker_input_topic], partitions=PARTITIONS)
        since_ms = int(time.time() * 1000) - 1000
        produce_uploads(settings, make_uploads(args.events, run, metadata_pool()))
        until_ms = int(time.time() * 1000) + 1000
        figures: dict[str, object] = {"events": args.events, "encoder": settings.worker_encoder.value,
                                      "cpu_count": os.cpu_count()}
        import tensorflow  # noqa: F401 - imported once before the clock starts, as in any long-lived process

        for name, dry_run in (("dry_run", True), ("missing", False), ("present", False)):
            started = time.monotonic()
            summary = run_backfill(settings, since_ms, until_ms, dry_run)
            seconds = time.monotonic() - started
            assert summary.read == args.events, summary
            figures[f"{name}_stored"] = summary.stored
            figures[f"{name}_seconds"] = round(seconds, 1)
            figures[f"{name}_per_s"] = round(args.events / seconds, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
