"""Read records back from a topic: what the recommender does, what demos and tests check, and how the operator
commands (replay, review export, backfill) read partitions to their end."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Self

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from worker.avro import load_schema, make_codec
from worker.consume import fetch
from worker.settings import Settings


def high_watermarks(settings: Settings, topic: str) -> dict[int, int]:
    """Partition -> high watermark now: where to start reading to skip what is already there.

    Tansu 0.6 reports the base offset of the last record batch + 1, so a reader starting there
    may also see the rest of that batch: filter by what you are waiting for.
    """
    consumer = Consumer({**settings.kafka_common(), "group.id": f"readback-{uuid.uuid4().hex[:8]}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def read_records(
    settings: Settings, topic: str, schema_name: str, *, idle_timeout_s: float = 30.0,
    until: Callable[[list[dict[str, Any]]], bool] = lambda _records: False, start: dict[int, int] | None = None,
    fetch_wait_ms: int = 10,
) -> Iterator[dict[str, Any]]:
    """Yield the records of `topic` (read_committed) from the beginning, or from `start` (partition ->
    offset), until `until(records)` holds or nothing new arrived for `idle_timeout_s`.

    A broker that answers fetches only at their deadline (Tansu) delivers each record up to
    `fetch_wait_ms` late; a longer wait costs it fewer empty fetches."""
    consumer = Consumer({
        **settings.kafka_common(), "group.id": f"readback-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "isolation.level": "read_committed", "session.timeout.ms": 6000,
        "fetch.wait.max.ms": fetch_wait_ms,
    })
    codec, schema = make_codec(settings), load_schema(schema_name)
    # assign, not subscribe: no group join to wait for, so reading starts at once
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, (start or {}).get(p, OFFSET_BEGINNING)) for p in partitions])
    seen: list[dict[str, Any]] = []
    last_new = time.monotonic()
    try:
        while not until(seen) and time.monotonic() - last_new < idle_timeout_s:
            for message in fetch(consumer, 1000, 0.5):  # receive times stay exact
                if message.error() is None:
                    record = codec.loads(message.value(), message.headers(), schema, topic)
                    seen.append(record)
                    last_new = time.monotonic()
                    yield record
    finally:
        consumer.close()


class PartitionsToTheEnd:
    """Read partitions from given offsets to their end: assigned (no group join, nothing committed),
    read_committed. The operator commands read this way (replay, review export, backfill).

    `messages(starts)` yields every message; `end(partition)` stops reading one before its end.
    TimeoutError when partitions are still open and nothing arrived for `idle_timeout_s`.
    """

    def __init__(self, settings: Settings, group: str, idle_timeout_s: float = 30.0) -> None:
        self.consumer = Consumer({**settings.kafka_common(), "group.id": group, "enable.auto.commit": False,
                                  "enable.partition.eof": True, "auto.offset.reset": "earliest",
                                  "isolation.level": "read_committed"})
        self._idle_timeout_s = idle_timeout_s
        self._open: set[int] = set()

    def messages(self, starts: list[TopicPartition]) -> Iterator[Message]:
        self.consumer.assign(starts)
        self._open = {tp.partition for tp in starts}
        topic = starts[0].topic if starts else ""
        last_progress = time.monotonic()
        while self._open:
            if time.monotonic() - last_progress > self._idle_timeout_s:
                raise TimeoutError(f"{topic}: partitions {sorted(self._open)} not read to their end "
                                   f"within {self._idle_timeout_s:.0f} s")
            for message in self.consumer.consume(num_messages=500, timeout=1.0):
                partition = message.partition()
                if partition not in self._open or _is_end_of_partition(message, topic):
                    self._open.discard(partition)
                    continue
                yield message
                last_progress = time.monotonic()  # after the caller's turn too: its work is not idleness

    def end(self, partition: int) -> None:
        self._open.discard(partition)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.consumer.close()


def _is_end_of_partition(message: Message, topic: str) -> bool:
    error = message.error()
    if error is None:
        return False
    if error.code() == KafkaError._PARTITION_EOF:
        return True
    raise RuntimeError(f"reading {topic}: {error.str()}")
