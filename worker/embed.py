"""Embed with cache: look every text up in Redis, run the encoder on the misses only.

Identical texts inside one batch are embedded once. Every embedding is then stored under
the video's key (for the recommender) and, for the misses, under the text's key.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from worker.cache import EmbeddingCache, video_key
from worker.encoders import EMBEDDING_DIM, Encoder


@dataclass(frozen=True, slots=True)
class Embedded:
    vectors: np.ndarray  # float32 [n, 512], L2-normalised
    keys: list[str]  # the Redis video key of each row
    hits: int
    misses: int
    encode_seconds: float


def embed_with_cache(
    texts: Sequence[str], video_ids: Sequence[str], encoder: Encoder, cache: EmbeddingCache
) -> Embedded:
    vectors = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
    cached = cache.get_many(texts)
    to_encode: dict[str, list[int]] = {}
    for i, (text, hit) in enumerate(zip(texts, cached, strict=True)):
        if hit is None:
            to_encode.setdefault(text, []).append(i)
        else:
            vectors[i] = hit
    started = time.perf_counter()
    if to_encode:
        fresh = encoder.encode(list(to_encode))
        for row, rows in zip(fresh, to_encode.values(), strict=True):
            vectors[rows] = row
    encode_seconds = time.perf_counter() - started
    first_rows = {rows[0] for rows in to_encode.values()}
    cache.put_many([t if i in first_rows else None for i, t in enumerate(texts)], video_ids, vectors)
    misses = sum(len(rows) for rows in to_encode.values())
    keys = [video_key(cache.namespace, v) for v in video_ids]
    return Embedded(vectors, keys, len(texts) - misses, misses, encode_seconds)
