"""Assemble one worker from the settings: head, encoder, cache, metrics, health server."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator

import redis
import structlog
from threadpoolctl import threadpool_limits

from worker.cache import EmbeddingCache, connect, text_namespace, video_namespace
from worker.classify import Classifier
from worker.encoders import EncoderIdentity, load_encoder, muse_identity
from worker.health import Health, serve
from worker.language import load_language_model
from worker.loop import Worker
from worker.metrics import Metrics
from worker.rollout import ModelWatcher
from worker.settings import Settings

log = structlog.get_logger(__name__)


def embedding_cache(
    settings: Settings, encoder: EncoderIdentity, head: Classifier, client: redis.Redis | None,
    on_error: Callable[[], None] = lambda: None,
) -> EmbeddingCache:
    """Text keys by the encoder and token budget; video keys also by the served text recipe.

    The video key holds the mean over the head's embed views of texts cut to the character budget,
    so two heads that differ in either never write one video key (a hot swap keeps both: rollout).
    """
    budget = settings.text_budget(head.text_budget)
    text_ns = text_namespace(encoder, budget.max_tokens)
    video_ns = video_namespace(text_ns, budget.max_chars, head.embed_views)
    return EmbeddingCache(client, video_ns, settings.worker_cache_ttl_s, on_error=on_error, text_namespace=text_ns,
                          video_ttl_s=settings.worker_video_ttl_s)


def freeze_startup_objects() -> None:
    """Keep the garbage collector off what start-up loaded (TensorFlow, the models: ~400k objects).

    A full collection walks every tracked object: ~200 ms here, a stall every upload in flight
    waits out, and the worker's p99 latency. Frozen objects are never scanned again.
    """
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def build_worker(settings: Settings) -> Iterator[Worker]:
    """A ready worker; its HTTP server and Redis connection are closed on exit."""
    # numpy only runs the small head here; with TensorFlow's thread pools busy, a multi-threaded
    # BLAS made that 128x512 @ 512x256 product 25x slower (29 ms instead of 1 ms).
    threadpool_limits(1, user_api="blas")
    health = Health()
    metrics = Metrics(low_confidence=settings.worker_low_confidence)
    server = serve(settings.worker_metrics_port, health, metrics.registry) if settings.worker_metrics_port else None
    models = ModelWatcher(settings.worker_model_dir, muse_identity(), settings.worker_model_watch_interval_s)
    budget = settings.text_budget(models.current.text_budget)
    encoder = load_encoder(settings, budget.max_tokens)
    load_language_model()
    metrics.set_prior(models.current.labels, models.current.prior)
    redis_client = connect(settings) if settings.worker_cache_enabled else None
    cache = embedding_cache(settings, encoder.identity, models.current, redis_client, metrics.cache_error)
    log.info("text_budget", max_chars=budget.max_chars, max_tokens=budget.max_tokens)
    freeze_startup_objects()
    try:
        yield Worker(settings, encoder, models, cache, metrics, health)
    finally:
        if redis_client is not None:
            redis_client.close()
        if server is not None:
            server.close()
