"""Embed with cache against a real Redis and the real (reference) MUSE encoder."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import redis

from worker.cache import EmbeddingCache, text_key, video_key
from worker.embed import EmbeddingJob, embed_with_cache
from worker.encoders.reference import ReferenceEncoder

pytestmark = pytest.mark.integration


class CountingEncoder:
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        self._encoder = ReferenceEncoder()
        self.identity = self._encoder.identity
        self.texts: list[str] = []
        self.threads: set[str] = set()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        self.threads.add(threading.current_thread().name)
        return self._encoder.encode(texts)


@pytest.fixture(scope="module")
def encoder() -> CountingEncoder:
    return CountingEncoder()


def test_misses_are_embedded_once_and_hits_come_from_redis(redis_url: str, encoder: CountingEncoder) -> None:
    client = redis.Redis.from_url(redis_url)
    cache = EmbeddingCache(client, encoder.identity.short, ttl_s=60)
    run = uuid.uuid4().hex
    texts = [f"Football highlights {run}", f"Recette de crêpes {run}", f"Football highlights {run}"]
    encoder.texts.clear()

    first = embed_with_cache(texts, ["a", "b", "c"], encoder, cache)
    assert encoder.texts == texts[:2]  # the duplicate inside the batch is embedded once
    assert (first.hits, first.misses) == (0, 3)
    np.testing.assert_array_equal(first.vectors[0], first.vectors[2])

    second = embed_with_cache(texts[:2], ["d", "e"], encoder, cache)
    assert encoder.texts == texts[:2]  # nothing new embedded
    assert (second.hits, second.misses) == (2, 0)
    np.testing.assert_array_equal(second.vectors, first.vectors[:2])

    stored = np.frombuffer(client.get(video_key(encoder.identity.short, "e")), dtype="<f4")
    np.testing.assert_array_equal(stored, first.vectors[1])
    assert client.get(text_key(encoder.identity.short, texts[0])) is not None
    assert 0 < client.ttl(video_key(encoder.identity.short, "a")) <= 60
    assert second.keys == [video_key(encoder.identity.short, v) for v in ("d", "e")]


def test_redis_down_means_no_cache_not_an_error(encoder: CountingEncoder) -> None:
    errors: list[int] = []
    dead = redis.Redis(port=1, socket_connect_timeout=0.2)
    cache = EmbeddingCache(dead, encoder.identity.short, ttl_s=60, on_error=lambda: errors.append(1))
    result = embed_with_cache(["Noticias del día"], ["x"], encoder, cache)
    assert result.misses == 1 and result.vectors.shape == (1, 512)
    assert abs(float(np.linalg.norm(result.vectors[0])) - 1) < 1e-5
    assert len(errors) == 2 and cache.errors == 2  # the MGET and the SET pipeline


def test_a_job_encodes_on_the_executor_and_stores_when_its_result_is_taken(
    redis_url: str, encoder: CountingEncoder
) -> None:
    cache = EmbeddingCache(redis.Redis.from_url(redis_url), encoder.identity.short, ttl_s=60)
    run = uuid.uuid4().hex
    texts = [f"Top 10 goals {run}", f"Nouveau clip officiel {run}"]
    encoder.texts.clear()
    encoder.threads.clear()
    with ThreadPoolExecutor(1, thread_name_prefix="test-encoder") as executor:
        job = EmbeddingJob(texts, ["a", "b"], encoder, cache, executor)
        job.wait(60)
        assert job.done()
        # nothing is stored before the result is taken: a lookup now still misses
        assert cache.get_many(texts) == [None, None]
        background = job.result()
    assert encoder.threads == {"test-encoder_0"}
    np.testing.assert_allclose(background.vectors, embed_with_cache(texts, ["c", "d"], encoder, cache).vectors)
    assert encoder.texts == texts  # the second call was all cache hits
    assert (background.hits, background.misses) == (0, 2)


def test_an_upload_with_embed_views_is_the_renormalised_mean_of_its_texts(
    redis_url: str, encoder: CountingEncoder
) -> None:
    client = redis.Redis.from_url(redis_url)
    cache = EmbeddingCache(client, encoder.identity.short, ttl_s=60)
    run = uuid.uuid4().hex
    full, short, other = f"Goal. football. The cup final {run}", f"Goal. football {run}", f"Recette {run}"
    encoder.texts.clear()

    result = embed_with_cache([full, other], ["v1", "v2"], encoder, cache, embed_with=[(short,), ()])
    assert encoder.texts == [full, other, short]
    assert (result.hits, result.misses) == (0, 3)
    alone = ReferenceEncoder().encode([full, short, other])
    mean = alone[0] + alone[1]
    np.testing.assert_allclose(result.vectors, [mean / np.linalg.norm(mean), alone[2]], atol=1e-5)
    # each text is cached on its own; the video key holds what was served
    stored = np.frombuffer(client.get(video_key(encoder.identity.short, "v1")), dtype="<f4")
    np.testing.assert_array_equal(stored, result.vectors[0])
    np.testing.assert_allclose(cache.get_many([short])[0], alone[1], atol=1e-6)

    again = embed_with_cache([full], ["v3"], encoder, cache, embed_with=[(short,)])
    assert encoder.texts == [full, other, short] and (again.hits, again.misses) == (2, 0)
    np.testing.assert_allclose(again.vectors[0], result.vectors[0], atol=1e-6)
