"""`make run`: a local broker (unless KAFKA_BOOTSTRAP_SERVERS is set), Redis, topics, sample
uploads in many languages, one worker, and the categorized events printed as they arrive."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator

import redis
import typer

from worker.app import build_worker
from worker.cache import connect
from worker.localbroker import LocalBroker
from worker.sample import produce_uploads, sample_uploads
from worker.settings import Settings
from worker.topics import ensure_topics, worker_topics


@contextlib.contextmanager
def kafka_for(settings: Settings) -> Iterator[Settings]:
    """The configured cluster, or a local Tansu broker for the duration."""
    if settings.kafka_bootstrap_servers:
        yield settings
        return
    with LocalBroker() as broker:
        typer.echo(f"started a local Kafka-protocol broker (Tansu) on {broker.bootstrap}")
        yield settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap})


def ensure_redis(settings: Settings) -> None:
    """Ping REDIS_URL; start a local redis-server when none answers and one is installed."""
    try:
        connect(settings).ping()
        return
    except redis.RedisError:
        pass
    binary = shutil.which("redis-server")
    url = redis.connection.parse_url(settings.redis_url)
    if binary is None or url.get("host", "127.0.0.1") not in ("127.0.0.1", "localhost"):
        raise SystemExit(
            f"No Redis answers at REDIS_URL ({url.get('host')}:{url.get('port', 6379)}). Start one "
            "(`apt-get install redis-server && redis-server --daemonize yes`) or set REDIS_URL."
        )
    subprocess.run([binary, "--daemonize", "yes", "--port", str(url.get("port", 6379)), "--save", "",
                    "--appendonly", "no"], check=True)
    for _ in range(50):
        with contextlib.suppress(redis.RedisError):
            connect(settings).ping()
            return
        time.sleep(0.1)
    raise SystemExit("redis-server was started but does not answer")


def run_demo(settings: Settings, timeout_s: float) -> int:
    from worker.readback import high_watermarks, read_records

    ensure_redis(settings)
    with kafka_for(settings) as kafka_settings:
        settings = kafka_settings
        ensure_topics(settings, worker_topics(settings))
        uploads = sample_uploads()
        titles = {u.video_id: u.title for u in uploads}
        # A broker named by KAFKA_BOOTSTRAP_SERVERS may hold earlier runs' outputs: only this run's count.
        start = high_watermarks(settings, settings.worker_output_topic)
        produce_uploads(settings, uploads)
        typer.echo(f"produced {len(uploads)} sample uploads to {settings.worker_input_topic}")
        with build_worker(settings) as worker:
            thread = threading.Thread(target=worker.run, name="worker")
            thread.start()
            seen: set[str] = set()
            try:
                for record in read_records(settings, settings.worker_output_topic, "VideoCategorized",
                                           idle_timeout_s=timeout_s, start=start,
                                           until=lambda _records: len(seen) >= len(uploads)):
                    if record["video_id"] not in titles or record["video_id"] in seen:
                        continue
                    seen.add(record["video_id"])
                    labels = ", ".join(f"{c['label']} {c['score']:.2f}" for c in record["categories"])
                    typer.echo(f"[{record['language']}] {record['top_label']:<22} ({labels}; "
                               f"confidence {record['confidence']:.2f})  "
                               f"{titles[record['video_id']]}")
            finally:
                worker.request_stop()
                thread.join()
        typer.echo(f"categorized {len(seen)}/{len(uploads)} uploads; model {worker.model_version}")
    return 0 if len(seen) == len(uploads) else 1
