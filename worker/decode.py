"""Decode: Kafka message bytes -> an `Upload` ready to embed, or a `DeadLetter` with the reason.

Errors are data here: `Decoder.decode` never raises for anything a producer can send. It raises
only `RegistryUnavailable`, which is no fault of the message: the loop retries that message later.
Reason codes (the DeadLetter `error_type`) are stable and documented in the README:

| reason            | when                                                             |
|-------------------|------------------------------------------------------------------|
| empty-message     | no value at all (tombstone)                                      |
| unknown-schema    | the writer schema (header fingerprint or registry id) is unknown, |
|                   | or it does not resolve to ours (a registry schema without title) |
| invalid-utf8      | a string field is not valid UTF-8                                |
| avro-decode       | bytes that are not the record (random, truncated, trailing data) |
| missing-field     | a required field is absent or empty (video_id, title)            |
| empty-text        | nothing is left of title, tags and description after cleaning    |
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from fastavro.read import SchemaResolutionError

from worker.avro import Codec, Headers, RegistryUnavailable, UnknownWriterSchema, load_schema
from worker.records import DeadLetter, SourceRef, Upload, VideoUploaded
from worker.text import build_texts

UPLOAD_SCHEMA_NAME = "VideoUploaded"
# Every reason code above, in the table's order.
DEAD_LETTER_REASONS = ("empty-message", "unknown-schema", "invalid-utf8", "avro-decode", "missing-field", "empty-text")


class InvalidEvent(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _reason_for(error: Exception) -> str:
    if isinstance(error, InvalidEvent):
        return error.reason
    if isinstance(error, UnknownWriterSchema | SchemaResolutionError):
        return "unknown-schema"
    if isinstance(error, UnicodeDecodeError):
        return "invalid-utf8"
    text = str(error).lower()
    # 40403: the Schema Registry's "schema not found" error code
    if "schema" in text and ("not found" in text or "unknown" in text or "40403" in text):
        return "unknown-schema"
    return "avro-decode"


def _millis(value: Any) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value)


def to_video_uploaded(record: dict[str, Any]) -> VideoUploaded:
    for name in ("video_id", "title"):
        if not record.get(name):
            raise InvalidEvent("missing-field", f"required field {name!r} is missing or empty")
    return VideoUploaded(
        video_id=record["video_id"],
        title=record["title"],
        description=record.get("description") or "",
        tags=tuple(record.get("tags") or ()),
        language=record.get("language") or None,
        channel_id=record.get("channel_id") or None,
        uploaded_at_ms=_millis(record.get("uploaded_at", 0)),
    )


class Decoder:
    def __init__(self, codec: Codec, text_max_chars: int, embed_views: tuple[str, ...] = ()) -> None:
        self._codec = codec
        self._max_chars = text_max_chars
        self._embed_views = embed_views
        self._schema = load_schema(UPLOAD_SCHEMA_NAME)

    def decode(
        self, key: bytes | None, value: bytes | None, headers: Headers | None, source: SourceRef
    ) -> Upload | DeadLetter:
        try:
            if not value:
                raise InvalidEvent("empty-message", "the message has no value")
            record = self._codec.loads(value, headers, self._schema, source.topic)
            return upload_of(record, source, self._max_chars, self._embed_views)
        except RegistryUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - every failure becomes a dead letter, by design
            message = f"{type(error).__name__}: {error}"[:2000]
            return DeadLetter(source, key, value, _reason_for(error), message, tuple(headers or ()))


def upload_of(record: dict[str, Any], source: SourceRef, max_chars: int, embed_views: tuple[str, ...]) -> Upload:
    """A decoded record with the texts the encoder will embed; InvalidEvent when it has none."""
    event = to_video_uploaded(record)
    text, embed_with = build_texts(event.title, event.tags, event.description, embed_views, max_chars)
    if not text:
        raise InvalidEvent("empty-text", "no text left after cleaning title, tags and description")
    return Upload(event, text, source, time.monotonic(), embed_with)
