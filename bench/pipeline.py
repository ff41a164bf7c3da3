"""End-to-end benchmark: one worker (a `python -m worker run` subprocess) against the local broker and Redis.

Phases, each on fresh texts unless said otherwise:
1. encoder_only_per_s: the same uploads' texts (and the head's embed views) through the encoder alone, same
   batch size, in this process.
2. events_per_s: N events pre-produced, the worker started; timed from its readiness to the last output.
3. cache_hit_events_per_s: the same texts again under new video ids (worker restarted, pre-produced).
4. latency: a paced producer at half the measured throughput; p50/p95/p99 of output receive time
   minus the event's upload time.
5. naive_per_s: a per-message loop in this process: one event, one embedding call, one produce
   (flushed), one synchronous commit.
Prints one JSON object (and writes it with --json-out).

    .venv/bin/python bench/pipeline.py --events 20000

`--profile DIR` attaches py-spy (`pip install py-spy`) to the worker during the two drain phases
(phase 2: `drain.txt`, phase 3: `cache-hit.txt`, collapsed stacks) and prints the top functions
of each by own and by total samples.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from naive_loop import naive_per_s
from pyspy_summary import top_functions
from worker_process import MeasuredWorker, cpu_seconds, running

from worker.localbroker import LocalBroker, free_port
from worker.readback import high_watermarks, read_records
from worker.records import VideoUploaded
from worker.sample import SAMPLES, produce_uploads
from worker.settings import Settings
from worker.text import build_texts
from worker.topics import ensure_topics, worker_topics

SHARED_YOUTUBE = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data")) / "youtube"
DRAIN_READER_FETCH_WAIT_MS = 200


def metadata_pool() -> list[tuple[str, list[str], str]]:
    """Real video metadata when ../shared is present (EN, FR, PT regions), else the built-in samples."""
    rows = []
    for name in ("train.jsonl", "dev_BR.jsonl"):
        path = SHARED_YOUTUBE / name
        if path.exists():
            rows += [json.loads(line) for line in path.open(encoding="utf-8")]
    if rows:
        return [(r["title"], r["tags"], r["description"]) for r in rows]
    return [(title, tags, description) for _lang, title, tags, description in SAMPLES]


def run_settings(bootstrap: str, run: str, **overrides: object) -> Settings:
    """Settings on a local broker and the Redis at REDIS_URL (default redis://127.0.0.1:6379/15), with topics
    and a group named after `run`."""
    values: dict[str, object] = {
        "kafka_bootstrap_servers": bootstrap, "redis_url": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        "worker_input_topic": f"{run}-in", "worker_output_topic": f"{run}-out", "worker_dlq_topic": f"{run}-dlq",
        "worker_group_id": f"{run}-group"}
    return Settings(**(values | overrides))  # type: ignore[arg-type]


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a worker started with `env` reads."""
    return Settings(**{k.lower(): v for k, v in env.items() if k.startswith(("WORKER_", "KAFKA_"))})


def make_uploads(count: int, run: str, pool: list[tuple[str, list[str], str]]) -> list[VideoUploaded]:
    """`count` uploads whose texts are distinct from each other and from any other run."""
    now_ms = int(time.time() * 1000)
    return [VideoUploaded(video_id=f"{run}-{i}", title=f"{pool[i % len(pool)][0]} ({run} {i})",
                          tags=tuple(pool[i % len(pool)][1]), description=pool[i % len(pool)][2],
                          uploaded_at_ms=now_ms) for i in range(count)]


def renamed(uploads: list[VideoUploaded], run: str) -> list[VideoUploaded]:
    return [dataclasses.replace(u, video_id=f"{run}-{i}") for i, u in enumerate(uploads)]


def outputs_of(settings: Settings, uploads: list[VideoUploaded], start: dict[int, int],
               timeout_s: float = 600, fetch_wait_ms: int = 10) -> list[tuple[float, dict]]:
    """(receive time, record) of the outputs for `uploads`, reading from `start` (not the earlier phases'
    outputs: decoding those would compete with the worker for the CPU and delay the receive times)."""
    wanted = {u.video_id for u in uploads}
    received: list[tuple[float, dict]] = []
    seen: set[str] = set()
    for record in read_records(settings, settings.worker_output_topic, "VideoCategorized", start=start,
                               idle_timeout_s=timeout_s, until=lambda _r: len(seen) >= len(wanted),
                               fetch_wait_ms=fetch_wait_ms):
        if record["video_id"] in wanted:
            seen.add(record["video_id"])
            received.append((time.time(), record))
    return received


@dataclasses.dataclass
class Drain:
    seconds: float
    worker: MeasuredWorker
    batch_mean: float
    cpu_s: dict[str, float]  # CPU seconds spent during the drain, per process on this machine


def timed_drain(settings: Settings, env: dict[str, str], port: int, uploads: list[VideoUploaded],
                broker_pid: int | None, profile_to: Path | None = None) -> Drain:
    """Pre-produce `uploads`, start a worker, time it from ready to the last output."""
    produce_uploads(settings, uploads)
    start = high_watermarks(settings, settings.worker_output_topic)
    with running(env, port) as worker:
        worker.wait_ready()
        if profile_to is not None:
            worker.profile(profile_to)
        pids = {"worker": worker.process.pid, "broker": broker_pid, "reader": os.getpid()}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        # Only the last output's time matters here: a long fetch wait spares the shared CPU the
        # reader's empty fetches (Tansu answers at the deadline), for at most 0.2 s on the total.
        outputs_of(settings, uploads, start, fetch_wait_ms=DRAIN_READER_FETCH_WAIT_MS)
        seconds = time.perf_counter() - started
        cpu = {name: round(cpu_seconds(pid) - cpu_before[name], 1) for name, pid in pids.items()}
        batch_mean = worker.metric("videocat_batch_size_sum") / max(1.0, worker.metric("videocat_batch_size_count"))
    return Drain(seconds, worker, batch_mean, cpu)


def encoder_only(settings: Settings, uploads: list[VideoUploaded]) -> float:
    """Uploads per second through the encoder alone: each batch's full texts and the head's embed views."""
    from worker.classify import load_classifier
    from worker.encoders import load_encoder, muse_identity

    head = load_classifier(settings.worker_model_dir, muse_identity())
    budget = settings.text_budget(head.text_budget)
    encoder = load_encoder(settings, budget.max_tokens)
    views, chars = head.embed_views, budget.max_chars

    def texts_of(batch: list[VideoUploaded]) -> list[str]:
        built = [build_texts(u.title, u.tags, u.description, views, chars) for u in batch]
        return [text for text, _ in built] + [v for _, extra in built for v in extra]

    size = settings.worker_batch_max_size
    encoder.encode(texts_of(uploads[:size]))  # warm-up: graph tracing, thread pools
    started = time.perf_counter()
    for i in range(0, len(uploads), size):
        encoder.encode(texts_of(uploads[i:i + size]))
    return len(uploads) / (time.perf_counter() - started)


def paced_latencies(settings: Settings, env: dict[str, str], port: int, uploads: list[VideoUploaded],
                    rate: float) -> list[float]:
    from confluent_kafka import Producer

    from worker.avro import load_schema, make_codec
    from worker.sample import upload_record

    producer = Producer({**settings.kafka_common(), "linger.ms": 1})
    codec, schema, topic = make_codec(settings), load_schema("VideoUploaded"), settings.worker_input_topic
    results: list[tuple[float, dict]] = []
    # This process holds TensorFlow and the earlier phases' objects: a full garbage collection
    # here pauses the paced producer and the reader for hundreds of ms, which is not the worker's
    # latency. Freeze what exists so the collector skips it during the measurement.
    gc.collect()
    gc.freeze()
    start = high_watermarks(settings, settings.worker_output_topic)
    with running(env, port) as worker:
        worker.wait_ready()
        reader = threading.Thread(target=lambda: results.extend(outputs_of(settings, uploads, start)))
        reader.start()
        start = time.perf_counter()
        for i, upload in enumerate(uploads):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            record = upload_record(dataclasses.replace(upload, uploaded_at_ms=int(time.time() * 1000)))
            value, headers = codec.dumps(record, schema, topic)
            producer.produce(topic, value, upload.video_id.encode(), headers=headers)
            producer.poll(0)
        producer.flush(30)
        reader.join()
    gc.unfreeze()
    return [received * 1000 - r["event_time"].timestamp() * 1000 for received, r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--naive-events", type=int, default=300)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--profile", type=Path, help="directory for py-spy profiles of the drain phases")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    profile_to = (lambda name: args.profile / name) if args.profile else (lambda name: None)

    broker = None
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        broker = LocalBroker().start()
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
    run = uuid.uuid4().hex[:8]
    port = free_port()
    env = {**os.environ, "WORKER_INPUT_TOPIC": f"bench-{run}-in", "WORKER_OUTPUT_TOPIC": f"bench-{run}-out",
           "WORKER_DLQ_TOPIC": f"bench-{run}-dlq", "WORKER_GROUP_ID": f"bench-{run}",
           "WORKER_METRICS_PORT": str(port), "WORKER_LOG_LEVEL": "warning", "KAFKA_SESSION_TIMEOUT_MS": "6000"}
    settings = settings_of(env)
    ensure_topics(settings, worker_topics(settings), partitions=4)
    pool = metadata_pool()
    uploads = make_uploads(args.events, f"{run}a", pool)
    try:
        encoder_rate = encoder_only(settings, uploads)
        broker_pid = broker.pid if broker is not None else None
        drain = timed_drain(settings, env, port, uploads, broker_pid, profile_to("drain.txt"))
        events_rate = len(uploads) / drain.seconds
        hits = timed_drain(settings, env, port, renamed(uploads, f"{run}b"), broker_pid, profile_to("cache-hit.txt"))
        paced = make_uploads(int(events_rate / 2 * args.latency_seconds), f"{run}c", pool)
        latencies = paced_latencies(settings, env, port, paced, events_rate / 2)
        naive = naive_per_s(settings, make_uploads(args.naive_events, f"{run}d", pool))
    finally:
        if broker is not None:
            broker.stop()
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    result = {
        "events": len(uploads), "seconds": round(drain.seconds, 2), "events_per_s": round(events_rate, 1),
        "encoder_only_per_s": round(encoder_rate, 1), "ratio": round(events_rate / encoder_rate, 3),
        "naive_per_s": round(naive, 1), "cache_hit_events_per_s": round(len(uploads) / hits.seconds, 1),
        "p50_ms": round(float(p50), 1), "p95_ms": round(float(p95), 1), "p99_ms": round(float(p99), 1),
        "latency_rate_per_s": round(events_rate / 2, 1), "latency_events": len(latencies),
        "batch_size_mean": round(drain.batch_mean, 1), "peak_rss_mb": round(drain.worker.peak_rss / 2**20, 1),
        "batch_max_size": settings.worker_batch_max_size, "batch_max_wait_ms": settings.worker_batch_max_wait_ms,
        "encoder": settings.worker_encoder.value,
        "drain_cpu_s": drain.cpu_s, "cache_hit_cpu_s": hits.cpu_s, "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result))
    for name in ("drain.txt", "cache-hit.txt"):
        if args.profile and (args.profile / name).exists():
            print(json.dumps({"profile": name, **top_functions(args.profile / name)}))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
