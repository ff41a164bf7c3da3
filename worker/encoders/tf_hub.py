"""The worker's MUSE encoder: a SavedModel loaded through `tensorflow_hub.load`.

The handle is the locally exported SavedModel by default (exported on first use when
missing) or any hub handle with the same call contract, such as the original
`https://tfhub.dev/google/universal-sentence-encoder-multilingual/3`. A local handle is
resolved once and loads only with a matching export stamp (`worker.encoders.stamp`); a
remote one gets an identity of its own (`hub-<hash of the handle>`), so its embeddings never
share a cache with the port's.

Batches are padded with empty texts to a few sizes (`BATCH_BUCKETS`) and longer inputs are
cut into chunks, so the model only ever sees those batch shapes. Chunks are small on CPU
(32 texts, ~4k tokens: same throughput as larger ones, a tenth of the transient memory) and
large on a GPU, which needs big batches to fill. When a GPU is visible the dense part runs
there (the exported graph pins tokenization to the CPU) and memory growth is enabled so
TensorFlow does not reserve the whole card.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np

from worker.encoders.base import EMBEDDING_DIM, EncoderIdentity, muse_identity
from worker.encoders.stamp import verify_export
from worker.settings import DEFAULT_SAVEDMODEL_DIR

BATCH_BUCKETS = (1, 8, 32, 128, 512, 2048)
CPU_MAX_BATCH = 32
GPU_MAX_BATCH = 2048


def batch_bucket(n: int) -> int:
    """The smallest bucket holding n texts (the largest bucket when none does)."""
    return next((size for size in BATCH_BUCKETS if size >= n), BATCH_BUCKETS[-1])


def chunks(texts: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(texts), size):
        yield texts[start : start + size]


def is_remote(handle: str) -> bool:
    """A URL (`https://`, `gs://`, ...) that tensorflow_hub fetches; anything else is a local directory."""
    return "://" in handle


def open_handle(handle: str) -> tuple[str, EncoderIdentity]:
    """What to load for `handle`, and the identity of what it computes.

    A local handle is resolved once (a relative `.cache/muse-savedmodel` is the default export too,
    and is exported when missing or stale) and must carry the stamp of the installed weights and
    this export version; the directory checked is the one loaded.
    """
    if is_remote(handle):
        tag = hashlib.sha256(handle.encode("utf-8")).hexdigest()[:8]
        return handle, replace(muse_identity(), graph=f"hub-{tag}")
    path = Path(handle).expanduser().resolve()
    if path == DEFAULT_SAVEDMODEL_DIR.resolve():
        from worker.encoders.tf_export import ensure_savedmodel

        ensure_savedmodel(path)
    return str(path), verify_export(path)


def configure_gpus() -> str | None:
    """Enable memory growth on every visible GPU; the device to run on, None for CPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # RuntimeError: the runtime is already initialised, and the setting was fixed by then
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    return "/GPU:0" if gpus else None


class TFHubEncoder:
    def __init__(self, handle: str, max_tokens: int = 128, max_batch: int | None = None) -> None:
        import tensorflow as tf
        import tensorflow_hub as hub
        import tensorflow_text  # noqa: F401  registers the SentencePiece ops the graph uses (both models)

        self.handle, self.identity = open_handle(handle)
        self.max_tokens = max_tokens
        self.device = configure_gpus()
        self.max_batch = batch_bucket(max_batch or (GPU_MAX_BATCH if self.device else CPU_MAX_BATCH))
        self._model = hub.load(self.handle)
        # the exported model takes the budget at run time; the original hub model has no budget
        self._with_budget = getattr(self._model, "embed_with_budget", None)
        self._budget = tf.constant(max_tokens, tf.int32)
        self._warm_up()

    def _warm_up(self) -> None:
        """Run every batch shape once, so the first real batches do not pay for graph tracing."""
        for size in BATCH_BUCKETS:
            if size <= self.max_batch:
                self._embed_padded(["warm-up"] * size)

    def _embed_padded(self, texts: Sequence[str]) -> np.ndarray:
        import tensorflow as tf

        padded = list(texts) + [""] * (batch_bucket(len(texts)) - len(texts))
        batch = tf.constant(padded, dtype=tf.string)
        with tf.device(self.device) if self.device else nullcontext():
            out = self._model(batch) if self._with_budget is None else self._with_budget(batch, self._budget)
        return np.asarray(out, dtype=np.float32)[: len(texts)]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [len(texts), 512], each row L2-normalised."""
        if not texts:
            return np.empty((0, EMBEDDING_DIM), dtype=np.float32)
        parts = [self._embed_padded(part) for part in chunks(texts, self.max_batch)]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]
