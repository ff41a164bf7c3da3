"""Replay dead letters: each chosen letter's original key, value and headers, back to its source topic.

Once a cause is mended (workers that know a producer's new schema, a producer bug fixed),
`python -m worker replay-dead-letters --error-type unknown-schema` sends the letters of that reason
back where they came from; the worker then categorizes them like any upload, or dead-letters them
again with the reason of the day. The original headers travel too: a plain-Avro event needs its
writer schema's fingerprint header to be read as it was written.

Each reason has its own bookmark (`worker.bookmarks`): the committed offsets of the group
`<group>-dlq-replay.<reason>` on the dead-letter topic. A run replays its reasons' letters past their
bookmarks and moves them, so two runs never replay the same letter, and replaying one reason leaves
the others' letters waiting. Bookmarks move only after every replayed message is acknowledged; a run
that fails before that replays its letters again next time (at least once). A run stops before the
first letter written after it began: what it replays may come back as new letters, and those wait
for the next run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message, Producer, TopicPartition

from worker.avro import Headers
from worker.bookmarks import Bookmarks, records_written_before
from worker.produce import idempotent_producer_config
from worker.settings import Settings

REPLAYED_FROM_HEADER = "dead-letter.replayed-from"  # "<dlq topic>/<partition>/<offset>", for tracing


@dataclass
class ReplaySummary:
    replayed: Counter[str] = field(default_factory=Counter)  # reason -> letters sent back (or due, in a dry run)
    dry_run: bool = False
    # reason -> letters whose original was cut to fit the topic (`original_cut`): replaying the kept
    # bytes would only dead-letter them again, so they are passed over and stay in the topic
    not_replayable: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {"replayed": dict(sorted(self.replayed.items())), "dry_run": self.dry_run,
                "not_replayable": dict(sorted(self.not_replayable.items()))}


def replay_group(settings: Settings, reason: str) -> str:
    return f"{settings.worker_group_id}-dlq-replay.{reason}"


def replay_headers(letter: dict[str, Any], dlq: TopicPartition) -> Headers:
    """The original headers (none for letters from before DeadLetter v2), then where the letter was."""
    original = [(h["key"], h["value"]) for h in letter.get("original_headers") or ()]
    return [*original, (REPLAYED_FROM_HEADER, f"{dlq.topic}/{dlq.partition}/{dlq.offset}".encode())]


def replay_dead_letters(settings: Settings, reasons: Sequence[str], dry_run: bool = False) -> ReplaySummary:
    """Send the letters of `reasons` past their bookmarks back to their source topics; see the module doc."""
    groups = {reason: replay_group(settings, reason) for reason in reasons}
    bookmarks = Bookmarks(settings, settings.worker_dlq_topic, groups)
    sender = None if dry_run else _Sender(settings)
    summary = ReplaySummary(dry_run=dry_run)
    try:
        letters = records_written_before(datetime.now(UTC), bookmarks, settings, "DeadLetter", "failed_at",
                                         f"{settings.worker_group_id}-dlq-replay")
        for where, letter in bookmarks.unhandled(letters, lambda letter: letter["error_type"]):
            reason = letter["error_type"]
            if letter["original_cut"]:
                summary.not_replayable[reason] += 1
            else:
                summary.replayed[reason] += 1
                if sender is not None:
                    sender.send(letter, where)
        if sender is not None:
            sender.wait_acknowledged()
            bookmarks.move_past_read()
        return summary
    finally:
        bookmarks.close()


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
