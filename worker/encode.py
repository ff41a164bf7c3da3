"""Encode: `Categorized`, review and `DeadLetter` records -> Avro message values (and headers)."""

from __future__ import annotations

import time
from typing import Any

from worker.avro import Codec, Headers, load_schema
from worker.records import Categorized, DeadLetter, VideoUploaded


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
        "event_time": result.event_time_ms,
        "processed_time": result.processed_time_ms,
    }


def review_request_record(upload: VideoUploaded, result: Categorized, reason: str) -> dict[str, Any]:
    """What a person labelling an upload needs: its metadata and the head's answer (`worker.review`)."""
    categorized = categorized_record(result)
    return {
        "video_id": upload.video_id,
        "title": upload.title,
        "tags": list(upload.tags),
        "description": upload.description,
        "channel_id": upload.channel_id,
        **{key: categorized[key] for key in ("language", "top_label", "confidence", "categories", "model_version",
                                              "event_time", "processed_time")},
        "reason": reason,
    }


def dead_letter_record(letter: DeadLetter) -> dict[str, Any]:
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
