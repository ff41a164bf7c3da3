"""Embed with cache: look every text up in Redis, run the encoder on the misses only.

Identical texts inside one batch are embedded once. Every embedding is then stored under
the video's key (for the recommender) and, for the misses, under the text's key.

An upload may be embedded from several texts (its full text and the model's `embed_views`):
its embedding is then the re-normalised mean of theirs (`mean_per_item`), each text cached
on its own, and the mean is what its video key holds.

An `EmbeddingJob` can run its encoder call on an executor: the loop then decodes the next
messages and sends the previous batch's results while the encoder works (TensorFlow releases
the GIL), so the Python glue does not add to the encoder's time. Redis is only touched from
the caller's thread, in `__init__` (one MGET) and `result` (one pipelined SET).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass

import numpy as np

from worker.cache import EmbeddingCache, video_key
from worker.encoders import EMBEDDING_DIM, Encoder


@dataclass(frozen=True, slots=True)
class Embedded:
    vectors: np.ndarray  # float32 [n, 512], L2-normalised
    keys: list[str]  # the Redis video key of each row
    stored: bool  # whether those keys (and the misses' text keys) were written
    hits: int
    misses: int
    encode_seconds: float


class EmbeddingJob:
    """One batch's embeddings: the cache lookup now, the encoder on the misses (on `executor` if given).

    `embed_with[i]`, when given, are more texts of upload i, averaged with `texts[i]`.
    """

    def __init__(self, texts: Sequence[str], video_ids: Sequence[str], encoder: Encoder, cache: EmbeddingCache,
                 executor: Executor | None = None, embed_with: Sequence[Sequence[str]] = ()) -> None:
        self._video_ids, self._cache = video_ids, cache
        self._texts, self._owners = flatten(texts, embed_with)
        self._vectors = np.empty((len(self._texts), EMBEDDING_DIM), dtype=np.float32)
        self._to_encode: dict[str, list[int]] = {}
        for i, (text, hit) in enumerate(zip(self._texts, cache.get_many(self._texts), strict=True)):
            if hit is None:
                self._to_encode.setdefault(text, []).append(i)
            else:
                self._vectors[i] = hit
        self._encoding: Future[tuple[np.ndarray, float]] | None = None
        self._encoded: tuple[np.ndarray, float] | None = None
        if not self._to_encode:
            self._encoded = (np.empty((0, EMBEDDING_DIM), dtype=np.float32), 0.0)
        elif executor is None:
            self._encoded = _timed_encode(encoder, list(self._to_encode))
        else:
            self._encoding = executor.submit(_timed_encode, encoder, list(self._to_encode))

    def done(self) -> bool:
        return self._encoding is None or self._encoding.done()

    def wait(self, timeout_s: float) -> None:
        if self._encoding is not None:
            wait_for([self._encoding], timeout_s)

    def result(self) -> Embedded:
        """Wait for the encoder, store the new embeddings (one Redis round trip), return one per upload."""
        if self._encoded is None:
            assert self._encoding is not None
            self._encoded = self._encoding.result()
        fresh, encode_seconds = self._encoded
        for row, rows in zip(fresh, self._to_encode.values(), strict=True):
            self._vectors[rows] = row
        vectors = mean_per_item(self._vectors, self._owners, len(self._video_ids))
        stored = self._cache.put_many(list(self._to_encode), fresh, self._video_ids, vectors)
        misses = sum(len(rows) for rows in self._to_encode.values())
        keys = [video_key(self._cache.namespace, v) for v in self._video_ids]
        return Embedded(vectors, keys, stored, len(self._texts) - misses, misses, encode_seconds)


def flatten(texts: Sequence[str], embed_with: Sequence[Sequence[str]]) -> tuple[list[str], list[int]]:
    """Every text to embed, the items' own texts first, and the item each one belongs to."""
    flat = [*texts, *(t for extra in embed_with for t in extra)]
    owners = [*range(len(texts)), *(i for i, extra in enumerate(embed_with) for _ in extra)]
    return flat, owners


def mean_per_item(vectors: np.ndarray, owners: Sequence[int], n_items: int) -> np.ndarray:
    """The rows of `vectors` averaged per owner (item index) and re-normalised to unit length.

    The common case, one text per item in item order, returns `vectors` as they are.
    """
    if len(vectors) == n_items:
        return vectors
    sums = np.zeros((n_items, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, np.asarray(owners), vectors)
    return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _timed_encode(encoder: Encoder, texts: list[str]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    return vectors, time.perf_counter() - started


def embed_with_cache(
    texts: Sequence[str], video_ids: Sequence[str], encoder: Encoder, cache: EmbeddingCache,
    embed_with: Sequence[Sequence[str]] = (),
) -> Embedded:
    """The synchronous form: look up, encode the misses, store, in the caller's thread."""
    return EmbeddingJob(texts, video_ids, encoder, cache, embed_with=embed_with).result()
