"""The small frozen types passed between the steps of the loop."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a consumed message came from: what its offset commit refers to."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class VideoUploaded:
    """A decoded `VideoUploaded` event (schemas/VideoUploaded.avsc)."""

    video_id: str
    title: str
    description: str = ""
    tags: tuple[str, ...] = ()
    language: str | None = None
    channel_id: str | None = None
    uploaded_at_ms: int = 0


@dataclass(frozen=True, slots=True)
class Upload:
    """An event ready to be embedded: the decoded upload, its model text and its source."""

    event: VideoUploaded
    text: str
    source: SourceRef
    received_at: float  # time.monotonic() when consumed, for the batch wait rule
    embed_with: tuple[str, ...] = ()  # the model's embed views: embedded too, averaged with `text`

    @property
    def encoder_chars(self) -> int:
        """Characters of text this upload sends to the encoder (its views included)."""
        return len(self.text) + sum(len(t) for t in self.embed_with)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An input that cannot be categorized, with the reason and the original bytes."""

    source: SourceRef
    key: bytes | None
    value: bytes | None
    error_type: str  # a stable reason code: avro-decode, missing-field, empty-text, ...
    error_message: str
    headers: tuple[tuple[str, bytes | None], ...] = ()  # the original Kafka headers, kept to replay the input
    original_cut: bool = False  # key, value or headers cut to fit the dead-letter topic: not replayable


@dataclass(frozen=True, slots=True)
class CategoryScore:
    label: str
    score: float


@dataclass(frozen=True, slots=True)
class Categorized:
    """The worker's answer for one upload (schemas/VideoCategorized.avsc)."""

    video_id: str
    categories: tuple[CategoryScore, ...]
    top_label: str
    top_score: float
    confidence: float  # calibrated chance that top_label is right; decides low confidence
    language: str | None
    model_version: str
    embedding_key: str
    embedding_stored: bool  # the worker wrote embedding_key before sending this (Redis may be down)
    event_time_ms: int
    processed_time_ms: int
    source: SourceRef = field(compare=False)
