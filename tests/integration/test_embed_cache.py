"""Embed with cache against a real Redis and the real (reference) MUSE encoder."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
import redis

from worker.app import embedding_cache
from worker.cache import EmbeddingCache, text_key, video_key
from worker.classify import Classifier, load_classifier
from worker.embed import Embedded, EmbeddingJob, embed_with_cache
from worker.encoders import muse_identity
from worker.encoders.reference import ReferenceEncoder
from worker.settings import DEFAULT_MODEL_DIR, load_settings
from worker.text import build_texts

pytestmark = pytest.mark.integration


class CountingEncoder:
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self, max_tokens: int = 128) -> None:
        self._encoder = ReferenceEncoder(max_tokens=max_tokens)
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
    assert first.stored and second.stored  # all hits: the video keys are still written
    np.testing.assert_array_equal(second.vectors, first.vectors[:2])

    stored = np.frombuffer(client.get(video_key(encoder.identity.short, "e")), dtype="<f4")
    np.testing.assert_array_equal(stored, first.vectors[1])
    assert client.get(text_key(encoder.identity.short, texts[0])) is not None
    assert 0 < client.ttl(video_key(encoder.identity.short, "a")) <= 60
    assert second.keys == [video_key(encoder.identity.short, v) for v in ("d", "e")]


def test_redis_down_means_no_cache_not_an_error(encoder: CountingEncoder) -> None:
    errors: list[int] = []
    dead = redis.Redis(port=1, socket_connect_timeout=0.2)
    cache = EmbeddingCache(dead, encoder.identity.short, ttl_s=60, on_error=lambda: errors.append(1), retry_after_s=0.5)
    result = embed_with_cache(["Noticias del día"], ["x"], encoder, cache)
    assert result.misses == 1 and result.vectors.shape == (1, 512) and not result.stored
    assert abs(float(np.linalg.norm(result.vectors[0])) - 1) < 1e-5
    assert len(errors) == 1 and cache.errors == 1  # the MGET failed: the SET pipeline was not tried
    assert not embed_with_cache(["Noticias de la noche"], ["y"], encoder, cache).stored
    assert cache.errors == 1  # Redis is left alone for retry_after_s: no call, no timeout to wait out
    time.sleep(0.6)
    assert not embed_with_cache(["Noticias de la tarde"], ["z"], encoder, cache).stored
    assert cache.errors == 2  # then tried again


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


def served(head: Classifier, client: redis.Redis, encoder: CountingEncoder, run: str) -> tuple[Embedded, str]:
    """One upload embedded as a worker serving `head` does (app.embedding_cache); its result and text namespace."""
    settings = load_settings(worker_cache_ttl_s=60)
    cache = embedding_cache(settings, encoder.identity, head, client)
    description = " ".join(f"The {i}th goal of the {run} season was scored from the halfway line." for i in range(30))
    text, views = build_texts(f"Goal of the season {run}", ["football", "goals"], description, head.embed_views,
                              settings.text_budget(head.text_budget).max_chars)
    return embed_with_cache([text], [f"video-{run}"], encoder, cache, embed_with=[views]), cache.text_namespace


def test_heads_with_other_text_recipes_write_other_video_keys_and_share_text_keys(redis_url: str) -> None:
    """Same encoder and token budget, other embed views or character budget: another vector, so another key."""
    client = redis.Redis.from_url(redis_url)
    encoder = CountingEncoder(max_tokens=256)  # the starter's token budget
    starter = load_classifier(DEFAULT_MODEL_DIR, muse_identity())
    assert (starter.max_tokens, starter.text_max_chars, starter.embed_views) == (256, 1024, ("title_tags",))
    recipes = [starter, replace(starter, embed_views=()), replace(starter, text_max_chars=512)]
    run = uuid.uuid4().hex
    results = [served(head, client, encoder, run) for head in recipes]

    keys = [result.keys[0] for result, _ in results]
    assert keys[0] == f"vc:emb:{muse_identity().short}/t256/c1024/v=title_tags:video:video-{run}"
    assert keys[1:] == [f"vc:emb:{muse_identity().short}/t256/c1024/v=none:video:video-{run}",
                        f"vc:emb:{muse_identity().short}/t256/c512/v=title_tags:video:video-{run}"]
    vectors = [result.vectors[0] for result, _ in results]
    assert max(float(vectors[0] @ v) for v in vectors[1:]) < 0.9999  # three recipes, three embeddings
    for key, vector in zip(keys, vectors, strict=True):  # each key holds what its head scored
        np.testing.assert_array_equal(np.frombuffer(client.get(key), dtype="<f4"), vector)
    # text keys stay shared: the full text without views is the starter's full text, a cache hit
    assert {text_ns for _, text_ns in results} == {f"{muse_identity().short}/t256"}
    assert (results[1][0].hits, results[1][0].misses) == (1, 0)


def test_video_keys_have_their_own_ttl_and_zero_keeps_them(redis_url: str, encoder: CountingEncoder) -> None:
    client = redis.Redis.from_url(redis_url)
    run = uuid.uuid4().hex
    for video_ttl_s, expected in ((600, range(590, 601)), (0, range(-1, 0))):  # -1: the key never expires
        cache = EmbeddingCache(client, encoder.identity.short, ttl_s=60, video_ttl_s=video_ttl_s)
        text, video_id = f"Résumé du match {run} {video_ttl_s}", f"v{run}{video_ttl_s}"
        assert embed_with_cache([text], [video_id], encoder, cache).stored
        assert client.ttl(video_key(encoder.identity.short, video_id)) in expected
        assert 0 < client.ttl(text_key(encoder.identity.short, text)) <= 60
