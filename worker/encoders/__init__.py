"""Sentence encoders behind one interface (`base.Encoder`): the TF SavedModel and the numpy reference."""

from __future__ import annotations

import structlog

from worker.encoders.base import DEFAULT_MAX_TOKENS, EMBEDDING_DIM, Encoder, EncoderIdentity, muse_identity
from worker.logs import native_logs_as_events
from worker.settings import EncoderKind, Settings

log = structlog.get_logger(__name__)

__all__ = ["EMBEDDING_DIM", "Encoder", "EncoderIdentity", "load_encoder", "muse_identity"]


def load_encoder(settings: Settings, max_tokens: int = DEFAULT_MAX_TOKENS) -> Encoder:
    """The configured encoder, keeping `max_tokens` per text (the served head's: `Settings.text_budget`)."""
    if settings.worker_encoder is EncoderKind.REFERENCE:
        from worker.encoders.reference import ReferenceEncoder

        return ReferenceEncoder(max_tokens=max_tokens)
    from worker.encoders.tf_hub import TFHubEncoder

    with native_logs_as_events("tensorflow"):
        encoder = TFHubEncoder(settings.worker_encoder_handle, max_tokens=max_tokens)
    log.info("encoder_loaded", handle=encoder.handle, device=encoder.device or "cpu", max_batch=encoder.max_batch)
    return encoder
