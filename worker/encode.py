"""Encode: `Categorized`, review and `DeadLetter` records -> Avro message values (and headers).

Outputs that carry an input's own text or bytes are bounded, so that no input can make an output
too large to produce (a poison pill: the worker would fail on it again after every restart):
- a dead letter keeps as much of the original key, headers and value as fits in
  `DEAD_LETTER_MAX_BYTES`, and its `error_message` says what was cut and how big it was;
- a review copy keeps the first `REVIEW_TEXT_MAX_CHARS` characters of the title, tags and description.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from worker.avro import Codec, Headers, load_schema
from worker.records import Categorized, DeadLetter, VideoUploaded
from worker.text import cut

# The encoded letter stays under the producer's message.max.bytes (librdkafka's default, 1,000,000;
# Kafka topics default to 1,048,588) with room for the message key (up to KEPT_KEY_BYTES).
DEAD_LETTER_MAX_BYTES = 900_000
KEPT_KEY_BYTES = 16 * 1024
KEPT_HEADER_BYTES = 64 * 1024
KEPT_MESSAGE_CHARS = 2_000
_RECORD_ROOM = 2_048  # Avro lengths, source coordinates, timestamp, the note on what was cut
# 8 times the starter head's text budget (1,024 cleaned characters): a labelled copy rebuilds the
# text the head scored unless cleaning dropped most of a field, and a copy stays under ~100 KB.
REVIEW_TEXT_MAX_CHARS = 8 * 1024


def categorized_record(result: Categorized) -> dict[str, Any]:
    return {
        "video_id": result.video_id,
        "categories": [{"label": c.label, "score": c.score} for c in result.categories],
        "top_label": result.top_label,
        "top_score": result.top_score,
        "confidence": result.confidence,
        "language": result.language,
        "model_version": result.model_version,
        "embedding_key": result.embedding_key,
        "embedding_stored": result.embedding_stored,
        "event_time": result.event_time_ms,
        "processed_time": result.processed_time_ms,
    }


def review_request_record(upload: VideoUploaded, result: Categorized, reason: str) -> dict[str, Any]:
    """What a person labelling an upload needs: its metadata and the head's answer (`worker.review`)."""
    categorized = categorized_record(result)
    return {
        "video_id": upload.video_id,
        "title": cut(upload.title, REVIEW_TEXT_MAX_CHARS),
        "tags": kept_tags(upload.tags, REVIEW_TEXT_MAX_CHARS),
        "description": cut(upload.description, REVIEW_TEXT_MAX_CHARS),
        "channel_id": upload.channel_id,
        **{key: categorized[key] for key in ("language", "top_label", "confidence", "categories", "model_version",
                                              "event_time", "processed_time")},
        "reason": reason,
    }


def kept_tags(tags: tuple[str, ...], max_chars: int) -> list[str]:
    """The first tags, each cut to `max_chars`, while their characters add up to at most `max_chars`."""
    kept: list[str] = []
    room = max_chars
    for tag in tags:
        if room <= 0:
            break
        kept.append(cut(tag, room))
        room -= len(kept[-1])
    return kept


def _header_bytes(headers: tuple[tuple[str, bytes | None], ...]) -> int:
    return sum(len(key.encode()) + len(value or b"") + 8 for key, value in headers)


def _kept_headers(headers: tuple[tuple[str, bytes | None], ...]) -> tuple[tuple[str, bytes | None], ...]:
    """The first headers (whole: a cut fingerprint would mislead a replay) within KEPT_HEADER_BYTES."""
    kept, size = 0, 0
    for header in headers:
        size += _header_bytes((header,))
        if size > KEPT_HEADER_BYTES:
            break
        kept += 1
    return headers[:kept]


def kept_key(key: bytes | None) -> bytes | None:
    """An input's message key as its dead letter keeps it: in the record and as the letter's own key."""
    return key[:KEPT_KEY_BYTES] if key is not None else None


def fit_dead_letter(letter: DeadLetter, max_bytes: int = DEAD_LETTER_MAX_BYTES) -> DeadLetter:
    """The letter, cut to encode within `max_bytes`: the value first, the key and headers only when huge.

    What was cut is said in the message, with the original sizes: bad input loses nothing silently.
    """
    key = kept_key(letter.key)
    headers = _kept_headers(letter.headers)
    message = letter.error_message[:KEPT_MESSAGE_CHARS]
    room = max_bytes - _RECORD_ROOM - len(key or b"") - _header_bytes(headers) - len(message.encode()) \
        - len(letter.source.topic.encode()) - len(letter.error_type.encode())
    value = letter.value[: max(0, room)] if letter.value is not None else None
    notes = [f"{name} {len(kept)} of {len(whole)} bytes kept" for name, kept, whole in (
        ("original_key", key, letter.key), ("original_value", value, letter.value)) if whole and kept != whole]
    if len(headers) < len(letter.headers):
        notes.append(f"original_headers {len(headers)} of {len(letter.headers)} kept")
    if notes:
        message = f"{message} [cut to fit the dead-letter topic: {'; '.join(notes)}]"
    return dataclasses.replace(letter, key=key, value=value, headers=headers, error_message=message,
                               original_cut=bool(notes))


def dead_letter_record(letter: DeadLetter, max_bytes: int = DEAD_LETTER_MAX_BYTES) -> dict[str, Any]:
    """The letter as a DeadLetter record, cut to fit `max_bytes` (`fit_dead_letter`)."""
    letter = fit_dead_letter(letter, max_bytes)
    return {
        "original_key": letter.key,
        "original_value": letter.value,
        "original_headers": [{"key": key, "value": value} for key, value in letter.headers],
        "source_topic": letter.source.topic,
        "source_partition": letter.source.partition,
        "source_offset": letter.source.offset,
        "error_type": letter.error_type,
        "error_message": letter.error_message,
        "failed_at": int(time.time() * 1000),
        "original_cut": letter.original_cut,
    }


class EventEncoder:
    def __init__(self, codec: Codec, output_topic: str, dlq_topic: str, review_topic: str = "") -> None:
        self._codec = codec
        self._output_topic = output_topic
        self._dlq_topic = dlq_topic
        self._review_topic = review_topic
        self._categorized = load_schema("VideoCategorized")
        self._review_request = load_schema("ReviewRequest")
        self._dead_letter = load_schema("DeadLetter")

    def categorized(self, result: Categorized) -> tuple[bytes, Headers]:
        return self._codec.dumps(categorized_record(result), self._categorized, self._output_topic)

    def review_request(self, upload: VideoUploaded, result: Categorized, reason: str) -> tuple[bytes, Headers]:
        record = review_request_record(upload, result, reason)
        return self._codec.dumps(record, self._review_request, self._review_topic)

    def dead_letter(self, letter: DeadLetter) -> tuple[bytes, Headers]:
        return self._codec.dumps(dead_letter_record(letter), self._dead_letter, self._dlq_topic)
