"""Read decoded records back from a topic: what the recommender does, and what demos and tests check."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

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
