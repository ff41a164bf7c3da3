"""Workers as subprocesses (`python -m worker run`) that a chaos test kills, restarts and scales,
plus the producer and the read-back that judge the run.

Each replica has a stable name (`w0`, `w1`, ...). In exactly-once mode its transactional id is
derived from that name, so a restarted replica reuses it: its `init_transactions` fences the
killed process's producer and ends the transaction it left open, as a StatefulSet pod would (Kafka
aborts it; Tansu 0.6 commits it, see `broker_aborts_fenced_transactions`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from confluent_kafka import Producer

from tests.integration.worker_harness import read_to_end
from worker.avro import load_schema, make_codec
from worker.records import VideoUploaded
from worker.sample import SAMPLES, upload_record
from worker.settings import REPO_ROOT, DeliveryMode, Settings
from worker.topics import ensure_topics

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


class Replica:
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

    def lifecycle(self) -> list[str]:
        """The replica's log events other than batches (start, assignments, leave, stop), one short line each."""
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return [short_event(line) for line in lines if line.startswith("{") and '"event": "batch"' not in line]

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


def short_event(json_line: str) -> str:
    """`HH:MM:SS.mmm event key=value ...` from a worker's JSON log line; partitions by number only."""
    try:
        fields = json.loads(json_line)
    except ValueError:
        return json_line[:200]
    when, event = str(fields.pop("timestamp", ""))[11:23], fields.pop("event", "?")
    fields.pop("level", None)
    if "partitions" in fields:
        fields["partitions"] = [partition for _topic, partition in fields["partitions"]]
    return f"{when} {event} " + " ".join(f"{key}={value}" for key, value in fields.items())[:200]


class WorkerPool:
    """Named replicas of one worker group."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self._settings = settings
        self._log_dir = log_dir
        self.replicas: dict[str, Replica] = {}

    def env_for(self, name: str) -> dict[str, str]:
        env = settings_env(self._settings)
        if self._settings.worker_delivery is DeliveryMode.EXACTLY_ONCE:
            env["WORKER_TRANSACTIONAL_ID"] = f"{self._settings.worker_group_id}-{name}"
        return env

    def start(self, name: str) -> Replica:
        replica = Replica(name, self.env_for(name), self._log_dir / f"{name}.log")
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

    def lifecycle_report(self) -> str:
        """What each replica logged about its group membership: printed when a chaos run fails."""
        return "\n".join(f"--- {name}\n" + "\n".join(replica.lifecycle())
                         for name, replica in sorted(self.replicas.items()))

    def stop_all(self) -> None:
        for replica in self.replicas.values():
            replica.stop()

    def end_abandoned_transactions(self) -> None:
        """Exactly-once: fence every replica's transactional id, ending what a killed replica left open.

        A replica killed inside a transaction whose restart was then scaled away never comes back to
        fence it. Kafka aborts such a transaction after `transaction.timeout.ms`; Tansu 0.6 never
        does, and it blocks read_committed readers for good. Fencing ends it on both.
        """
        if self._settings.worker_delivery is not DeliveryMode.EXACTLY_ONCE:
            return
        for name in self.replicas:
            producer = Producer({**self._settings.kafka_common(),
                                 "transactional.id": self.env_for(name)["WORKER_TRANSACTIONAL_ID"]})
            producer.init_transactions(30)


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


@dataclass(frozen=True)
class OutputSeen:
    """Where one `VideoCategorized` output sits, and when a worker made it."""
    partition: int
    offset: int
    processed_time_ms: int

    def describe(self) -> str:
        clock = time.strftime("%H:%M:%S", time.gmtime(self.processed_time_ms / 1000))
        return f"p{self.partition}@{self.offset} made {clock}.{self.processed_time_ms % 1000:03d}Z"


def outputs_by_video(settings: Settings, partitions: int) -> dict[str, list[OutputSeen]]:
    """Every `VideoCategorized` output per video id, as a read_committed consumer downstream sees them."""
    codec, schema, topic = make_codec(settings), load_schema("VideoCategorized"), settings.worker_output_topic
    seen: dict[str, list[OutputSeen]] = defaultdict(list)
    for message in read_to_end(settings, topic, partitions, timeout_s=120):
        output = codec.loads(message.value(), message.headers(), schema, topic)
        seen[output["video_id"]].append(
            OutputSeen(message.partition(), message.offset(), _epoch_ms(output["processed_time"])))
    return dict(seen)


def _epoch_ms(value: object) -> int:
    """fastavro returns timestamp-millis as an aware datetime; raw ints pass through."""
    return int(value.timestamp() * 1000) if hasattr(value, "timestamp") else int(value)  # type: ignore[arg-type]


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, every_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s:.0f} s")
        time.sleep(every_s)



def broker_aborts_fenced_transactions(settings: Settings) -> bool:
    """Does the broker abort a transaction left open when a new producer with the same
    transactional.id fences it (what Kafka does), rather than commit it (what Tansu 0.6 does)?

    A SIGKILLed replica leaves such a transaction; its restart fences it. Kafka aborts it, so the
    replica's outputs in it are never seen and the inputs are processed again, once. Tansu 0.6 makes
    them visible while dropping the offsets sent with them, so those inputs get a second output.
    """
    topic = f"fencing-probe-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic], partitions=1)
    transactional = {**settings.kafka_common(), "transactional.id": topic}
    fenced = Producer(transactional)
    fenced.init_transactions(30)
    fenced.begin_transaction()
    fenced.produce(topic, b"left open by a dead replica")
    fenced.flush(30)
    successor = Producer(transactional)
    successor.init_transactions(30)
    successor.begin_transaction()
    successor.produce(topic, b"the restarted replica's first transaction")
    successor.commit_transaction(30)
    seen = [record.value() for record in read_to_end(settings, topic)]
    return seen == [b"the restarted replica's first transaction"]
