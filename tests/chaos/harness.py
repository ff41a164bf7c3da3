"""Workers as subprocesses (`python -m worker run`) that a chaos test kills, restarts and scales,
plus the producer and the read-back that judge the run.

Each replica has a stable name (`w0`, `w1`, ...). In exactly-once mode its transactional id is
derived from that name, so a restarted replica reuses it: its `init_transactions` fences the
killed process's producer and aborts the transaction it left open, as a StatefulSet pod would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from worker.avro import load_schema, make_codec
from worker.records import VideoUploaded
from worker.sample import SAMPLES, upload_record
from worker.settings import REPO_ROOT, DeliveryMode, Settings

WORKER_COMMAND = [sys.executable, "-m", "worker", "run"]


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as the environment variables `python -m worker run` reads them from."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:  # unset optional: "None" would not parse back
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        elif hasattr(value, "value"):  # enums
            value = value.value
        env[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


class WorkerProcess:
    """One replica: a `python -m worker run` subprocess, its output appended to a log file."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self._env = env
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self._log_start = self._log.tell()
        self._process = subprocess.Popen(WORKER_COMMAND, cwd=REPO_ROOT,
                                         env={**os.environ, "PYTHONFAULTHANDLER": "1", **self._env}, stdout=self._log,
                                         stderr=subprocess.STDOUT)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def dump_stacks(self) -> None:
        """SIGABRT: with PYTHONFAULTHANDLER set, the worker writes every thread's stack to its log."""
        self._end(signal.SIGABRT, 10)

    def batches(self) -> int:
        """Batches this run of the replica has processed (its `batch` log lines)."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().count(b'"event": "batch"')

    def kill(self) -> None:
        """SIGKILL: no drain, no commit, an open transaction left behind."""
        self._end(signal.SIGKILL, 10)

    def stop(self) -> None:
        """SIGTERM: the worker drains, commits and leaves the group."""
        self._end(signal.SIGTERM, 60)

    def _end(self, sig: int, timeout_s: float) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(sig)
            try:
                self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
        self._process = None

    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()


class WorkerPool:
    """Named replicas of one worker group."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self._settings = settings
        self._log_dir = log_dir
        self.replicas: dict[str, WorkerProcess] = {}

    def env_for(self, name: str) -> dict[str, str]:
        env = settings_env(self._settings)
        if self._settings.worker_delivery is DeliveryMode.EXACTLY_ONCE:
            env["WORKER_TRANSACTIONAL_ID"] = f"{self._settings.worker_group_id}-{name}"
        return env

    def start(self, name: str) -> WorkerProcess:
        replica = WorkerProcess(name, self.env_for(name), self._log_dir / f"{name}.log")
        replica.start()
        self.replicas[name] = replica
        return replica

    def running(self) -> list[str]:
        return sorted(name for name, replica in self.replicas.items() if replica.alive)

    def crashed(self) -> list[str]:
        """Replicas that exited by themselves (none of ours stop without being told to)."""
        return [name for name, r in self.replicas.items() if r.returncode() is not None]

    def dump_stacks(self) -> None:
        for replica in self.replicas.values():
            replica.dump_stacks()

    def stop_all(self) -> None:
        for replica in self.replicas.values():
            replica.stop()


def reupload_events(count: int, distinct_texts: int, run: str) -> list[VideoUploaded]:
    """`count` uploads with distinct video ids but only `distinct_texts` different texts (re-uploads),
    so most events are embedding-cache hits."""
    now_ms = int(time.time() * 1000)
    events = []
    for i in range(count):
        variant = i % distinct_texts
        lang, title, tags, description = SAMPLES[variant % len(SAMPLES)]
        events.append(VideoUploaded(video_id=f"{run}-{i}", title=f"{title} #{variant // len(SAMPLES)}",
                                    description=description, tags=tuple(tags), channel_id=f"channel-{lang}",
                                    uploaded_at_ms=now_ms))
    return events


class PacedProducer(threading.Thread):
    """Produces the events at a steady rate in the background, keyed by video id; once `hurry` is set,
    the rest goes out at full speed."""

    def __init__(self, settings: Settings, events: list[VideoUploaded], seconds: float) -> None:
        super().__init__(name="chaos-producer", daemon=True)
        self._settings = settings
        self._events = events
        self._seconds = seconds
        self.error: BaseException | None = None
        self.hurry = threading.Event()

    def run(self) -> None:
        try:
            self._produce()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error

    def _produce(self) -> None:
        producer = Producer({**self._settings.kafka_common(), "enable.idempotence": True, "linger.ms": 5})
        codec, schema = make_codec(self._settings), load_schema("VideoUploaded")
        topic = self._settings.worker_input_topic
        started = time.monotonic()
        chunk = 50
        for first in range(0, len(self._events), chunk):
            for event in self._events[first:first + chunk]:
                value, headers = codec.dumps(upload_record(event), schema, topic)
                producer.produce(topic, value, event.video_id.encode(), headers=headers)
            producer.poll(0)
            due = started + self._seconds * (first + chunk) / len(self._events)
            self.hurry.wait(max(0.0, due - time.monotonic()))
        if producer.flush(60):
            raise RuntimeError("inputs not acknowledged within 60 s")


def output_counts(settings: Settings, partitions: int) -> Counter[str]:
    """How many `VideoCategorized` outputs each video id has, reading every output partition to its
    end with isolation.level=read_committed (what a downstream consumer sees)."""
    consumer = Consumer({**settings.kafka_common(), "group.id": f"count-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": "read_committed"})
    codec, schema, topic = make_codec(settings), load_schema("VideoCategorized"), settings.worker_output_topic
    counts: Counter[str] = Counter()
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        at_eof: set[int] = set()
        deadline = time.monotonic() + 120
        while len(at_eof) < partitions and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                error = message.error()
                if error is None:
                    counts[codec.loads(message.value(), message.headers(), schema, topic)["video_id"]] += 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_eof.add(message.partition())
        assert len(at_eof) == partitions, f"output partitions not read to their end: {sorted(at_eof)}"
    finally:
        consumer.close()
    return counts


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, every_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s:.0f} s")
        time.sleep(every_s)

