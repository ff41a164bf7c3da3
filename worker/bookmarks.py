"""Read a topic past bookmarks: per kind of record, a consumer group's committed offsets mark what is done.

The operator commands that drain a side topic (dead-letter replay, review export) read it this way:
each kind of record (a dead-letter reason, a review reason) has its own group, so handling one kind
leaves the others' records waiting. A run reads each partition from the earliest bookmark to its
end, but stops before the first record written after the run began (what the run itself causes to
be written waits for the next run). Bookmarks move only when the caller says its output is safe:
a run that fails before that handles its records again next time (at least once).

A record that does not decode as the topic's schema (one written before the schema existed, or
by something else) is logged and passed over as `None`: the reader moves past it, rather than failing
every run at it until retention removes it. It stays in the topic, where the log line says. Not so a
record whose writer schema fingerprint is unknown here: that may be a newer version of the topic's own
schema, which an upgraded tool reads, so the run stops there (`NewerSchema`) and moves no bookmark.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import structlog
from confluent_kafka import Consumer, Message, TopicPartition

from worker import avro
from worker.avro import (
    FINGERPRINT_HEADER,
    AvroSchema,
    Codec,
    RegistryUnavailable,
    UnknownWriterSchema,
    load_schema,
    make_codec,
    writer_schema_of,
)
from worker.readback import PartitionsToTheEnd
from worker.settings import Settings

log = structlog.get_logger(__name__)


class Bookmarks:
    """Per kind, its group's committed offset on each partition of `topic` (0: none yet)."""

    def __init__(self, settings: Settings, topic: str, groups: Mapping[str, str]) -> None:
        self.topic = topic
        self._groups = {kind: Consumer({**settings.kafka_common(), "group.id": group, "enable.auto.commit": False})
                        for kind, group in groups.items()}
        partitions = self._partitions(next(iter(self._groups.values()))) if self._groups else []
        self.offsets: dict[str, dict[int, int]] = {
            kind: {tp.partition: max(tp.offset, 0) for tp in group.committed(partitions, timeout=10)}
            for kind, group in self._groups.items()
        }
        self._read_to: dict[int, int] = {}  # partition -> the offset after the last record `unhandled` read

    def _partitions(self, consumer: Consumer) -> list[TopicPartition]:
        metadata = consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        if metadata.error is not None:
            raise RuntimeError(f"topic {self.topic}: {metadata.error.str()}")
        return [TopicPartition(self.topic, p) for p in metadata.partitions]

    def unhandled(
        self, records: Iterable[tuple[TopicPartition, dict[str, Any] | None]], kind_of: Callable[[dict[str, Any]], str]
    ) -> Iterator[tuple[TopicPartition, dict[str, Any]]]:
        """The records (`records_written_before`'s) of a kind read here and past that kind's bookmark.
        Every record, yielded or not, counts as read for `move_past_read`."""
        for where, record in records:
            self._read_to[where.partition] = where.offset + 1
            if record is not None and self._is_past(kind_of(record), where):
                yield where, record

    def _is_past(self, kind: str, where: TopicPartition) -> bool:
        return kind in self.offsets and where.offset >= self.offsets[kind][where.partition]

    def start(self) -> list[TopicPartition]:
        """Per partition, the earliest bookmark: where a reader of every kind must begin."""
        partitions = next(iter(self.offsets.values()), {})
        return [TopicPartition(self.topic, p, min(o[p] for o in self.offsets.values())) for p in partitions]

    def move_past_read(self) -> None:
        """Move every kind's bookmark past what `unhandled` read (a bookmark never moves back)."""
        for kind, group in self._groups.items():
            moved = [TopicPartition(self.topic, p, o) for p, o in self._read_to.items() if o > self.offsets[kind][p]]
            if moved:
                group.commit(offsets=moved, asynchronous=False)

    def close(self) -> None:
        for group in self._groups.values():
            group.close()


def records_written_before(
    started: datetime, bookmarks: Bookmarks, settings: Settings, schema_name: str, written_at: str,
    reader_group: str, idle_timeout_s: float = 30.0,
) -> Iterator[tuple[TopicPartition, dict[str, Any] | None]]:
    """(where, decoded record) from the earliest bookmark to each partition's end, or to its first record
    whose `written_at` field is at or after `started`; the record is None where it does not decode."""
    codec, schema, topic = make_codec(settings), load_schema(schema_name), bookmarks.topic
    with PartitionsToTheEnd(settings, reader_group, idle_timeout_s) as reader:
        for message in reader.messages(bookmarks.start()):
            where = TopicPartition(topic, message.partition(), message.offset())
            record = _decoded(codec, schema, message, where)
            if record is not None and record[written_at] >= started:
                reader.end(message.partition())
                continue
            yield where, record


class NewerSchema(RuntimeError):
    """A record written with a schema fingerprint none of ours has: perhaps a newer version of the topic's."""


def _decoded(codec: Codec, schema: AvroSchema, message: Message, where: TopicPartition) -> dict[str, Any] | None:
    try:
        return codec.loads(message.value() or b"", message.headers(), schema, where.topic)
    except RegistryUnavailable:
        raise  # no fault of the record: the run fails and the next one reads it again
    except UnknownWriterSchema as error:
        if _fingerprint_unknown_here(message):
            raise NewerSchema(f"{where.topic} partition {where.partition} offset {where.offset}: {error}. It may be "
                              f"a newer {schema.name} version: run a newer worker image's tool. No bookmark moved."
                              ) from error
        _log_passed_over(schema, where, error)
        return None
    except Exception as error:  # noqa: BLE001 - whatever the bytes are, they are not this schema's record
        _log_passed_over(schema, where, error)
        return None


def _fingerprint_unknown_here(message: Message) -> bool:
    """Whether the record has a plain-Avro fingerprint header that no version of any of our schemas has
    (one of another schema, e.g. an old VideoCategorized review copy, is known: that record is passed over)."""
    fingerprint = dict(message.headers() or ()).get(FINGERPRINT_HEADER)
    if fingerprint is None:
        return False
    names = [path.stem for path in avro.SCHEMA_DIR.glob("*.avsc")]
    return not any(writer_schema_of(name, fingerprint) is not None for name in names)


def _log_passed_over(schema: AvroSchema, where: TopicPartition, error: Exception) -> None:
    log.warning("undecodable_record_passed_over", topic=where.topic, partition=where.partition,
                offset=where.offset, schema=schema.name, error=f"{type(error).__name__}: {error}")
