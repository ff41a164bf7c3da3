"""Which categorized uploads are copied to the review topic for labelling, and why.

Two reasons, two uses of the labels a person adds:
- `sample`: a fixed share of all uploads (WORKER_REVIEW_SAMPLE_RATE), chosen by a hash of the video id,
  whatever the head answered. Labelled, it is a fair test set of the languages the platform receives:
  what `evaluate` needs before a new head ships.
- `low-confidence`: the other uploads whose calibrated confidence is under WORKER_LOW_CONFIDENCE, the
  ones the head is least sure of. Labelled, they are few-shot training rows (`train --few-shot-data`),
  and no fair test set: they were chosen for being hard.

A sampled upload is never also a low-confidence copy, so the two labelled sets never share a video.
The hash makes the choice the same on every replica and on redelivery.
"""

from __future__ import annotations

import hashlib

SAMPLE = "sample"
LOW_CONFIDENCE = "low-confidence"
REVIEW_REASONS = (LOW_CONFIDENCE, SAMPLE)


def in_sample(video_id: str, rate: float) -> bool:
    """True for a stable `rate` share of video ids (the first 8 bytes of their SHA-256, as a fraction)."""
    if rate <= 0.0:
        return False
    position = int.from_bytes(hashlib.sha256(video_id.encode()).digest()[:8], "big") / 2**64
    return position < rate


def review_reason(video_id: str, confidence: float, low_confidence: float, sample_rate: float) -> str | None:
    """Why this upload goes to the review topic, or None when it does not."""
    if in_sample(video_id, sample_rate):
        return SAMPLE
    if confidence < low_confidence:
        return LOW_CONFIDENCE
    return None
