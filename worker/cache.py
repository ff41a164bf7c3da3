"""Cache: embeddings in Redis, shared with the recommender.

Key layout:

    vc:emb:<text ns>:text:<sha256 of the model text, hex>   a repeated text is not embedded twice
    vc:emb:<video ns>:video:<video_id>                       what the recommender reads: the embedding
                                                             the head scored (with embed views, the
                                                             mean of the upload's texts')

`<text ns>` names what one text's embedding depends on: the encoder (its weights and export
version) and the token budget, e.g. `use-multilingual-v3-cnn@55462a18.export-v2/t256`; the key
hashes the exact text the encoder saw, so heads share text keys. `<video ns>` adds the text recipe
that turns an upload into those texts: the character budget and the embed views averaged with the
full text, e.g. `use-multilingual-v3-cnn@55462a18.export-v2/t256/c1024/v=title_tags` (`v=none`
without views). Two heads that build an upload's embedding differently never share a video key.

Value: the 512 float32 of the L2-normalised embedding, little-endian, 2048 bytes
(`numpy.frombuffer(value, dtype="<f4")`). Text keys expire after `WORKER_CACHE_TTL_S`, video keys
after `WORKER_VIDEO_TTL_S` (0: never): the recommender may need a video's embedding long after the
worker last needs its text's.

One batch costs two round trips: one MGET for every text key, one pipeline of SETs.
Redis is an optimisation, never a dependency: when it fails the batch is embedded without
the cache, the outage is logged at most once per `log_interval_s`, and Redis is left alone for
`RETRY_AFTER_S` before it is tried again: a Redis that drops packets instead of refusing them
costs one socket timeout per interval, not two per batch (which would cut a replica's throughput
tenfold). Caching resumes by itself when Redis answers again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence

import numpy as np
import redis
import structlog

from worker.encoders.base import EncoderIdentity
from worker.logs import LogLimiter
from worker.settings import Settings

log = structlog.get_logger(__name__)
EMBEDDING_DTYPE = np.dtype("<f4")
RETRY_AFTER_S = 5.0


def text_namespace(encoder: EncoderIdentity, max_tokens: int) -> str:
    """The text keys' namespace: what one text's embedding depends on."""
    return f"{encoder.short}/t{max_tokens}"


def video_namespace(text_namespace: str, max_chars: int, embed_views: Sequence[str]) -> str:
    """The video keys' namespace: the text namespace and the recipe that builds an upload's texts."""
    return f"{text_namespace}/c{max_chars}/v={'+'.join(embed_views) or 'none'}"


def text_key(namespace: str, text: str) -> str:
    return f"vc:emb:{namespace}:text:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"


def video_key(namespace: str, video_id: str) -> str:
    return f"vc:emb:{namespace}:video:{video_id}"


def connect(settings: Settings) -> redis.Redis:
    timeout = settings.redis_socket_timeout_s
    kwargs: dict[str, object] = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
                                 "health_check_interval": 30}
    if settings.redis_password.get_secret_value():
        kwargs["password"] = settings.redis_password.get_secret_value()
    if settings.redis_username:
        kwargs["username"] = settings.redis_username
    if settings.redis_ssl_ca_certs:
        kwargs["ssl_ca_certs"] = settings.redis_ssl_ca_certs
    return redis.Redis.from_url(settings.redis_url, **kwargs)


class EmbeddingCache:
    """`namespace` is the video keys' (`video_key(cache.namespace, id)`); `text_namespace` the text keys'.

    Without a `text_namespace`, both kinds of key share `namespace`.
    """

    def __init__(self, client: redis.Redis | None, namespace: str, ttl_s: int, log_interval_s: float = 30.0,
                 on_error: Callable[[], None] = lambda: None, text_namespace: str | None = None,
                 retry_after_s: float = RETRY_AFTER_S, video_ttl_s: int | None = None):
        self._client = client
        self._retry_after_s = retry_after_s
        self._next_try = 0.0  # monotonic: no call to Redis before this, after a failure
        self._on_error = on_error
        self.namespace = namespace
        self.text_namespace = text_namespace or namespace
        self._ttl_s = ttl_s
        self._video_ttl_s = ttl_s if video_ttl_s is None else video_ttl_s  # 0: no expiry
        self._log = LogLimiter(log_interval_s)
        self.errors = 0

    def _reachable(self) -> bool:
        """A client, and no failure within the last `retry_after_s`."""
        return self._client is not None and time.monotonic() >= self._next_try

    def _failed(self, operation: str, error: Exception) -> None:
        self._next_try = time.monotonic() + self._retry_after_s
        self.errors += 1
        self._on_error()
        if self._log.allow("cache_unavailable") is not None:
            # the message names the error class only: a connection error may quote the URL
            log.warning("cache_unavailable", operation=operation, error=type(error).__name__, errors=self.errors)

    def get_many(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """Cached embeddings by text, None where missing (all None when Redis is down or left alone)."""
        if not self._reachable() or not texts:
            return [None] * len(texts)
        try:
            values = self._client.mget([text_key(self.text_namespace, t) for t in texts])
        except redis.RedisError as error:
            self._failed("mget", error)
            return [None] * len(texts)
        return [None if v is None else np.frombuffer(v, dtype=EMBEDDING_DTYPE) for v in values]

    def videos_present(self, video_ids: Sequence[str]) -> list[bool]:
        """Whether each video's key exists, in one round trip. Raises what Redis raises: for tools
        (backfill), not the stream, which must go on without Redis."""
        if self._client is None:
            raise redis.ConnectionError("the cache is disabled (WORKER_CACHE_ENABLED=false)")
        pipe = self._client.pipeline(transaction=False)
        for video_id in video_ids:
            pipe.exists(video_key(self.namespace, video_id))
        return [bool(n) for n in pipe.execute()]

    def put_many(
        self, texts: Sequence[str], text_embeddings: np.ndarray, video_ids: Sequence[str], video_embeddings: np.ndarray
    ) -> bool:
        """Store each text's embedding under its text key and each video's under its video key; False when
        nothing was stored (no client, Redis left alone after a failure, or this write failed)."""
        if not self._reachable():
            return False
        pipe = self._client.pipeline(transaction=False)
        for keys, rows, ttl_s in (
            ([text_key(self.text_namespace, t) for t in texts], text_embeddings, self._ttl_s),
            ([video_key(self.namespace, v) for v in video_ids], video_embeddings, self._video_ttl_s),
        ):
            for key, row in zip(keys, rows, strict=True):
                pipe.set(key, np.ascontiguousarray(row, dtype=EMBEDDING_DTYPE).tobytes(), ex=ttl_s or None)
        try:
            pipe.execute()
        except redis.RedisError as error:
            self._failed("set", error)
            return False
        return True
