"""Embeddings with an on-disk cache, so repeated training runs skip the encoder.

Layout: `.cache/embeddings/<encoder short id>-t<max tokens>/<sha256 of text>.npy`, one
float32 [512] vector per text. The key holds the encoder identity and token budget, the
two things that change an embedding; writes go through a temporary file and a rename,
so an interrupted run never leaves a torn vector.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worker.encoders.base import DEFAULT_MAX_TOKENS, EMBEDDING_DIM, Encoder, EncoderIdentity, muse_identity
from worker.settings import REPO_ROOT, EncoderKind, load_settings

DEFAULT_CACHE_ROOT = REPO_ROOT / ".cache" / "embeddings"
_CHUNK = 64


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class LazyEncoder:
    """The configured encoder, loaded on first use: fully cached runs never load TensorFlow.

    Both MUSE encoders (TF and reference) have the identity `muse_identity()`; the loaded
    encoder is checked against it.
    """

    def __init__(self, kind: EncoderKind | None, max_tokens: int | None = None) -> None:
        self.settings = load_settings().with_encoder(kind)
        self.max_tokens = max_tokens or self.settings.worker_max_tokens or DEFAULT_MAX_TOKENS
        self.identity: EncoderIdentity = muse_identity()
        self._encoder: Encoder | None = None

    def encode(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            from worker.encoders import load_encoder

            self._encoder = load_encoder(self.settings, self.max_tokens)
            if self._encoder.identity != self.identity:
                raise RuntimeError(f"encoder identity {self._encoder.identity} != expected {self.identity}")
        return self._encoder.encode(texts)


class EmbeddingCache:
    def __init__(self, encoder: Encoder, max_tokens: int, root: Path = DEFAULT_CACHE_ROOT) -> None:
        self.encoder = encoder
        self.max_tokens = max_tokens
        self.folder = root / f"{encoder.identity.short}-t{max_tokens}"
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.npy"

    def _store(self, key: str, vector: np.ndarray) -> None:
        tmp = self.folder / f".{key}.{os.getpid()}.tmp.npy"
        np.save(tmp, vector.astype(np.float32))
        tmp.replace(self._path(key))

    def embed(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        """float32 [n, 512]; only texts missing from the cache reach the encoder."""
        out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        missing: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            path = self._path(key)
            if path.exists():
                out[i] = np.load(path)
            else:
                missing.setdefault(key, []).append(i)
        todo = list(missing)
        bar = tqdm(total=len(todo), desc="embedding", unit="text", disable=not progress or not todo)
        for start in range(0, len(todo), _CHUNK):
            chunk = todo[start : start + _CHUNK]
            vectors = self.encoder.encode([texts[missing[k][0]] for k in chunk])
            for key, vector in zip(chunk, vectors, strict=True):
                self._store(key, vector)
                out[missing[key]] = vector
            bar.update(len(chunk))
        bar.close()
        return out
