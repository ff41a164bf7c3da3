"""Run real workers against the test broker and Redis, and inspect what they did."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from worker.app import build_worker
from worker.loop import Worker
from worker.readback import read_records
from worker.settings import Settings


@contextlib.contextmanager
def running_worker(settings: Settings) -> Iterator[Worker]:
    """A worker running in a thread; stopped (drained and committed) on exit."""
    with build_worker(settings) as worker:
        thread = threading.Thread(target=worker.run, name="test-worker", daemon=True)
        thread.start()
        try:
            yield worker
        finally:
            worker.request_stop()
            thread.join(timeout=60)
            assert not thread.is_alive(), "worker did not stop within 60 s"


def read_outputs(settings: Settings, expected: int, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """Outputs until `expected` distinct videos have one (at-least-once may repeat some)."""
    return list(read_records(settings, settings.worker_output_topic, "VideoCategorized", idle_timeout_s=timeout_s,
                             until=lambda r: len({o["video_id"] for o in r}) >= expected))


def read_dead_letters(settings: Settings, expected: int, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    return list(read_records(settings, settings.worker_dlq_topic, "DeadLetter",
                             idle_timeout_s=timeout_s, until=lambda r: len(r) >= expected))


def end_offsets(settings: Settings, topic: str, partitions: int) -> list[int]:
    """Last offset + 1 per partition, found by reading the partition to its end.

    Not `get_watermark_offsets`: Tansu 0.6 reports the high watermark as the base offset of the
    last record batch + 1, which is short of the end when a producer batched several records.
    """
    ends = [0] * partitions
    for message in read_to_end(settings, topic, partitions, timeout_s=120):
        ends[message.partition()] = message.offset() + 1
    return ends


def read_to_end(settings: Settings, topic: str, partitions: int = 1, timeout_s: float = 30.0) -> list[Message]:
    """Every partition of `topic` from its start to its end, with isolation.level=read_committed."""
    consumer = Consumer({**settings.kafka_common(), "group.id": f"read-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": "read_committed"})
    records: list[Message] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        at_eof: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(at_eof) < partitions:
            assert time.monotonic() < deadline, f"{topic}: partitions {sorted(at_eof)} of {partitions} read " \
                                                f"to their end within {timeout_s:.0f} s"
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                if message.error() is None:
                    records.append(message)
                elif message.error().code() == KafkaError._PARTITION_EOF:
                    at_eof.add(message.partition())
        return records
    finally:
        consumer.close()


def group_reader(settings: Settings) -> Consumer:
    """A consumer of the worker's group that only reads its committed offsets (never subscribes)."""
    return Consumer({**settings.kafka_common(), "group.id": settings.worker_group_id, "enable.auto.commit": False})


def committed_offsets(settings: Settings, partitions: int, reader: Consumer | None = None) -> list[int]:
    """The worker group's committed position per input partition (negative: none yet)."""
    consumer = reader or group_reader(settings)
    try:
        tps = [TopicPartition(settings.worker_input_topic, p) for p in range(partitions)]
        return [tp.offset for tp in consumer.committed(tps, timeout=10)]
    finally:
        if reader is None:
            consumer.close()


def committed_total(settings: Settings, partitions: int, reader: Consumer | None = None) -> int:
    return sum(max(0, offset) for offset in committed_offsets(settings, partitions, reader))


def committed_and_end_offsets(settings: Settings, partitions: int) -> tuple[list[int], list[int]]:
    return committed_offsets(settings, partitions), end_offsets(settings, settings.worker_input_topic, partitions)


def metric(worker: Worker, name: str, labels: dict[str, str] | None = None) -> float:
    return worker.metrics.registry.get_sample_value(name, labels or {}) or 0.0


def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition") -> None:
    """Poll `condition` every 0.2 s; fail the test when it has not held within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(0.2)


class Newcomer:
    """A bare member of the worker's group that polls in a thread, never processes and never commits."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.assigned: list[list[int]] = []
        self.assigned_at: list[float] = []  # time.monotonic() of each assignment
        self._consumer = Consumer({**settings.kafka_common(), "group.id": settings.worker_group_id,
                                   "client.id": "aaa-newcomer", "enable.auto.commit": False,
                                   "session.timeout.ms": settings.kafka_session_timeout_ms})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="newcomer", daemon=True)

    def join(self) -> None:
        self._consumer.subscribe([self._settings.worker_input_topic], on_assign=self._on_assign)
        self._thread.start()

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned.append([p.partition for p in partitions])
        self.assigned_at.append(time.monotonic())

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._consumer.poll(0.1)

    def leave(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()
