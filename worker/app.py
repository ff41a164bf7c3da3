"""Assemble one worker from the settings: encoder, head, cache, metrics, health server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import structlog
from threadpoolctl import threadpool_limits

from worker.cache import EmbeddingCache, connect
from worker.encoders import load_encoder
from worker.health import Health, serve
from worker.loop import Worker
from worker.metrics import Metrics
from worker.rollout import ModelWatcher
from worker.settings import Settings

log = structlog.get_logger(__name__)


@contextlib.contextmanager
def build_worker(settings: Settings) -> Iterator[Worker]:
    """A ready worker; its HTTP server and Redis connection are closed on exit."""
    # numpy only runs the small head here; with TensorFlow's thread pools busy, a multi-threaded
    # BLAS made that 128x512 @ 512x256 product 25x slower (29 ms instead of 1 ms).
    threadpool_limits(1, user_api="blas")
    health = Health()
    metrics = Metrics(low_confidence=settings.worker_low_confidence)
    server = serve(settings.worker_metrics_port, health, metrics.registry) if settings.worker_metrics_port else None
    encoder = load_encoder(settings)
    models = ModelWatcher(settings.worker_model_dir, encoder.identity, settings.worker_model_watch_interval_s)
    metrics.set_prior(models.current.labels, models.current.prior)
    redis_client = connect(settings) if settings.worker_cache_enabled else None
    cache = EmbeddingCache(redis_client, encoder.identity.short, settings.worker_cache_ttl_s,
                           on_error=metrics.cache_error)
    try:
        yield Worker(settings, encoder, models, cache, metrics, health)
    finally:
        if redis_client is not None:
            redis_client.close()
        if server is not None:
            server.close()
