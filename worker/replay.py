"""Replay dead letters: each chosen letter's original key, value and headers, back to its source topic.

Once a cause is mended (workers that know a producer's new schema, a producer bug fixed),
`python -m worker replay-dead-letters --error-type unknown-schema` sends the letters of that reason
back where they came from; the worker then categorizes them like any upload, or dead-letters them
again with the reason of the day. The original headers travel too: a plain-Avro event needs its
writer schema's fingerprint header to be read as it was written.

Each reason has its own bookmark: the committed offsets of the group `<group>-dlq-replay.<reason>`
on the dead-letter topic. A run replays its reasons' letters past their bookmarks and moves them,
so two runs never replay the same letter, and replaying one reason leaves the others' letters
waiting. Bookmarks move only after every replayed message is acknowledged; a run that fails before
that replays its letters again next time (at least once). A run reads each partition to its end,
but stops before the first letter written after it began: what it replays may come back as new
letters, and those wait for the next run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from worker.avro import Headers, load_schema, make_codec
from worker.produce import idempotent_producer_config
from worker.settings import Settings

REPLAYED_FROM_HEADER = "dead-letter.replayed-from"  # "<dlq topic>/<partition>/<offset>", for tracing


@dataclass
class ReplaySummary:
    replayed: Counter[str] = field(default_factory=Counter)  # reason -> letters sent back (or due, in a dry run)
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"replayed": dict(sorted(self.replayed.items())), "dry_run": self.dry_run}


def replay_group(settings: Settings, reason: str) -> str:
    return f"{settings.worker_group_id}-dlq-replay.{reason}"


def replay_headers(letter: dict[str, Any], dlq: TopicPartition) -> Headers:
    """The original headers (none for letters from before DeadLetter v2), then where the letter was."""
    original = [(h["key"], h["value"]) for h in letter.get("original_headers") or ()]
    return [*original, (REPLAYED_FROM_HEADER, f"{dlq.topic}/{dlq.partition}/{dlq.offset}".encode())]


def replay_dead_letters(
    settings: Settings, reasons: Sequence[str], dry_run: bool = False, idle_timeout_s: float = 30.0
) -> ReplaySummary:
    """Send the letters of `reasons` past their bookmarks back to their source topics; see the module doc."""
    bookmarks = _Bookmarks(settings, reasons)
    sender = None if dry_run else _Sender(settings)
    summary = ReplaySummary(dry_run=dry_run)
    try:
        read_to: dict[int, int] = {}  # partition -> the offset after the last letter this run read
        for where, letter in _letters_written_before(datetime.now(UTC), bookmarks, settings, idle_timeout_s):
            read_to[where.partition] = where.offset + 1
            reason = letter["error_type"]
            if reason in bookmarks.offsets and where.offset >= bookmarks.offsets[reason][where.partition]:
                summary.replayed[reason] += 1
                if sender is not None:
                    sender.send(letter, where)
        if sender is not None:
            sender.wait_acknowledged()
            bookmarks.move_to(read_to)
        return summary
    finally:
        bookmarks.close()


class _Bookmarks:
    """Per reason, its replay group's committed offset on each partition of the dead-letter topic (0: none yet)."""

    def __init__(self, settings: Settings, reasons: Sequence[str]) -> None:
        self.topic = settings.worker_dlq_topic
        self._groups = {reason: Consumer({**settings.kafka_common(), "group.id": replay_group(settings, reason),
                                          "enable.auto.commit": False}) for reason in reasons}
        partitions = self._partitions(next(iter(self._groups.values()))) if self._groups else []
        self.offsets: dict[str, dict[int, int]] = {
            reason: {tp.partition: max(tp.offset, 0) for tp in group.committed(partitions, timeout=10)}
            for reason, group in self._groups.items()
        }

    def _partitions(self, consumer: Consumer) -> list[TopicPartition]:
        metadata = consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        if metadata.error is not None:
            raise RuntimeError(f"dead-letter topic {self.topic}: {metadata.error.str()}")
        return [TopicPartition(self.topic, p) for p in metadata.partitions]

    def start(self) -> list[TopicPartition]:
        """Per partition, the earliest bookmark: where a reader of every reason must begin."""
        partitions = next(iter(self.offsets.values()), {})
        return [TopicPartition(self.topic, p, min(o[p] for o in self.offsets.values())) for p in partitions]

    def move_to(self, read_to: dict[int, int]) -> None:
        for reason, group in self._groups.items():
            moved = [TopicPartition(self.topic, p, o) for p, o in read_to.items() if o > self.offsets[reason][p]]
            if moved:
                group.commit(offsets=moved, asynchronous=False)

    def close(self) -> None:
        for group in self._groups.values():
            group.close()


def _letters_written_before(
    started: datetime, bookmarks: _Bookmarks, settings: Settings, idle_timeout_s: float
) -> Iterator[tuple[TopicPartition, dict[str, Any]]]:
    """(where, decoded letter) from the earliest bookmark to each partition's end, or to its first letter
    written at or after `started`."""
    codec, schema, topic = make_codec(settings), load_schema("DeadLetter"), bookmarks.topic
    reader = Consumer({**settings.kafka_common(), "group.id": f"{settings.worker_group_id}-dlq-replay",
                       "enable.auto.commit": False, "enable.partition.eof": True, "auto.offset.reset": "earliest",
                       "isolation.level": "read_committed"})
    try:
        reader.assign(bookmarks.start())
        open_partitions = {tp.partition for tp in reader.assignment()}
        last_progress = time.monotonic()
        while open_partitions:
            if time.monotonic() - last_progress > idle_timeout_s:
                raise TimeoutError(f"{topic}: partitions {sorted(open_partitions)} not read to their end "
                                   f"within {idle_timeout_s:.0f} s")
            for message in reader.consume(num_messages=500, timeout=1.0):
                partition = message.partition()
                if partition not in open_partitions or _is_eof(message):
                    open_partitions.discard(partition)
                    continue
                last_progress = time.monotonic()
                letter = codec.loads(message.value(), message.headers(), schema, topic)
                if letter["failed_at"] >= started:  # what this run replays may come back: the next run's
                    open_partitions.discard(partition)
                    continue
                yield TopicPartition(topic, partition, message.offset()), letter
    finally:
        reader.close()


def _is_eof(message: Message) -> bool:
    error = message.error()
    if error is None:
        return False
    if error.code() == KafkaError._PARTITION_EOF:
        return True
    raise RuntimeError(f"reading dead letters: {error.str()}")


class _Sender:
    """An idempotent producer (never the worker's transactional id) that remembers failed deliveries."""

    def __init__(self, settings: Settings) -> None:
        self._producer = Producer(idempotent_producer_config(settings))
        self._failures: list[str] = []

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error.str()}")

    def send(self, letter: dict[str, Any], dlq: TopicPartition) -> None:
        self._producer.produce(letter["source_topic"], letter["original_value"], letter["original_key"],
                               headers=replay_headers(letter, dlq), on_delivery=self._delivered)
        self._producer.poll(0)

    def wait_acknowledged(self, timeout_s: float = 60.0) -> None:
        """Raise unless the broker acknowledged every message sent: the caller then moves no bookmark."""
        left = self._producer.flush(timeout_s)
        if left or self._failures:
            raise RuntimeError(f"{left} replayed messages unacknowledged after {timeout_s:.0f} s and "
                               f"{len(self._failures)} failed (first: {self._failures[:1]}); no bookmark moved")
