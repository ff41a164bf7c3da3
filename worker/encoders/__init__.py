"""Sentence encoders behind one interface (`base.Encoder`): the TF SavedModel and the numpy reference."""

from __future__ import annotations

from worker.encoders.base import DEFAULT_MAX_TOKENS, EMBEDDING_DIM, Encoder, EncoderIdentity, muse_identity
from worker.settings import EncoderKind, Settings

__all__ = ["EMBEDDING_DIM", "Encoder", "EncoderIdentity", "load_encoder", "muse_identity"]


def load_encoder(settings: Settings) -> Encoder:
    max_tokens = settings.worker_max_tokens or DEFAULT_MAX_TOKENS
    if settings.worker_encoder is EncoderKind.REFERENCE:
        from worker.encoders.reference import ReferenceEncoder

        return ReferenceEncoder(max_tokens=max_tokens)
    from worker.encoders.tf_hub import TFHubEncoder

    return TFHubEncoder(settings.worker_encoder_handle, max_tokens=max_tokens)
