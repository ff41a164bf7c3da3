"""backfill-embeddings against the real broker and Redis, with the served head's text recipe and the real
MUSE weights (the reference port: the same identity, so the same keys, as the TF encoder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
import redis
from confluent_kafka import Producer

from worker.app import embedding_cache
from worker.avro import load_schema, make_codec
from worker.backfill import BackfillFailed, run_backfill
from worker.cache import EmbeddingCache, video_key
from worker.classify import load_classifier
from worker.embed import embed_with_cache
from worker.encoders import muse_identity
from worker.encoders.reference import ReferenceEncoder
from worker.produce import idempotent_producer_config
from worker.records import VideoUploaded
from worker.sample import sample_uploads, upload_record
from worker.settings import Settings
from worker.text import build_texts
from worker.topics import ensure_topics

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000


def produce_at(settings: Settings, records: Sequence[tuple[VideoUploaded | bytes, int]]) -> None:
    """Each upload (or raw bytes: an event the worker dead-letters) with the given record timestamp."""
    producer = Producer(idempotent_producer_config(settings))
    codec, schema, topic = make_codec(settings), load_schema("VideoUploaded"), settings.worker_input_topic
    for item, timestamp_ms in records:
        if isinstance(item, VideoUploaded):
            value, headers = codec.dumps(upload_record(item), schema, topic)
            producer.produce(topic, value, item.video_id.encode(), headers=headers, timestamp=timestamp_ms)
        else:
            producer.produce(topic, item, b"garbage", timestamp=timestamp_ms)
    assert producer.flush(30) == 0


def served_cache(settings: Settings, client: redis.Redis | None) -> EmbeddingCache:
    return embedding_cache(settings, muse_identity(), load_classifier(settings.worker_model_dir, muse_identity()),
                           client)


def expected_embeddings(settings: Settings, uploads: Sequence[VideoUploaded]) -> np.ndarray:
    """What the worker would store: the served head's texts, embedded without any cache."""
    head = load_classifier(settings.worker_model_dir, muse_identity())
    budget = settings.text_budget(head.text_budget)
    texts = [build_texts(u.title, u.tags, u.description, head.embed_views, budget.max_chars) for u in uploads]
    encoder = ReferenceEncoder(max_tokens=budget.max_tokens)
    return embed_with_cache([t for t, _ in texts], [u.video_id for u in uploads], encoder,
                            served_cache(settings, None), [views for _, views in texts]).vectors


def test_fills_the_missing_keys_of_the_window_only(
    make_settings: Callable[..., Settings], redis_url: str, unique_name: str
) -> None:
    settings = make_settings(worker_encoder="reference")
    ensure_topics(settings, [settings.worker_input_topic], partitions=2)
    before, *inside, after = sample_uploads(6, prefix=unique_name)
    now_ms = int(time.time() * 1000)
    produce_at(settings, [(before, now_ms - 3 * HOUR_MS), *((u, now_ms - 2 * HOUR_MS + i) for i, u in
               enumerate(inside)), (b"not an avro event", now_ms - 2 * HOUR_MS), (after, now_ms - HOUR_MS // 2)])
    client = redis.Redis.from_url(redis_url)
    namespace = served_cache(settings, client).namespace
    keys = {u.video_id: video_key(namespace, u.video_id) for u in (before, *inside, after)}
    client.set(keys[inside[0].video_id], b"written by the worker")  # there: left as it is
    since, until = now_ms - 5 * HOUR_MS // 2, now_ms - HOUR_MS

    dry = run_backfill(settings, since, until, dry_run=True)
    assert (dry.read, dry.undecodable, dry.already_stored, dry.stored) == (5, 1, 1, 3)
    assert client.exists(*(keys[u.video_id] for u in inside[1:])) == 0

    done = run_backfill(settings, since, until)
    assert (done.read, done.undecodable, done.already_stored, done.stored) == (5, 1, 1, 3)
    stored = np.stack([np.frombuffer(client.get(keys[u.video_id]), dtype="<f4") for u in inside[1:]])
    np.testing.assert_allclose(stored, expected_embeddings(settings, inside[1:]), atol=1e-6)
    assert client.get(keys[inside[0].video_id]) == b"written by the worker"
    assert client.exists(keys[before.video_id], keys[after.video_id]) == 0  # outside the window

    again = run_backfill(settings, since, until)
    assert (again.already_stored, again.stored) == (4, 0)


def test_records_out_of_timestamp_order_are_read_and_a_video_keeps_its_later_upload(
    make_settings: Callable[..., Settings], redis_url: str, unique_name: str
) -> None:
    """Producer timestamps are not ordered within a partition: a record stamped after `--until` does not end
    the partition while later records may still fall inside the window."""
    settings = make_settings(worker_encoder="reference")
    ensure_topics(settings, [settings.worker_input_topic], partitions=1)
    first, second, stamped_late = sample_uploads(3, prefix=unique_name)
    edited = replace(first, title="Edited title: the best goals of the season")
    now_ms = int(time.time() * 1000)
    until = now_ms - HOUR_MS
    produce_at(settings, [(first, until - HOUR_MS), (stamped_late, until + 60_000), (second, until - HOUR_MS + 1),
                          (edited, until - HOUR_MS + 2)])
    client = redis.Redis.from_url(redis_url)
    namespace = served_cache(settings, client).namespace

    done = run_backfill(settings, until - 2 * HOUR_MS, until)
    assert (done.read, done.already_stored, done.stored) == (3, 0, 3)
    assert client.exists(video_key(namespace, second.video_id)) == 1
    assert client.exists(video_key(namespace, stamped_late.video_id)) == 0
    stored = np.frombuffer(client.get(video_key(namespace, first.video_id)), dtype="<f4")
    np.testing.assert_allclose(stored, expected_embeddings(settings, [edited])[0], atol=1e-6)


def test_a_topic_that_does_not_exist_is_one_error(make_settings: Callable[..., Settings], unique_name: str) -> None:
    settings = make_settings(worker_encoder="reference", worker_input_topic=f"{unique_name}-never-created")
    with pytest.raises(BackfillFailed, match="never-created"):
        run_backfill(settings, 0, int(time.time() * 1000), dry_run=True)


def test_redis_not_answering_ends_the_run_with_one_error(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(worker_encoder="reference", redis_url="redis://127.0.0.1:1/0",
                             redis_socket_timeout_s=0.5)
    ensure_topics(settings, [settings.worker_input_topic], partitions=1)
    now_ms = int(time.time() * 1000)
    produce_at(settings, [(sample_uploads(1)[0], now_ms - HOUR_MS)])
    with pytest.raises(BackfillFailed, match="Redis did not answer"):
        run_backfill(settings, now_ms - 2 * HOUR_MS, now_ms, dry_run=True)


def test_the_command_prints_its_summary_and_refuses_a_time_without_zone(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    settings = make_settings()
    ensure_topics(settings, [settings.worker_input_topic], partitions=1)
    now_ms = int(time.time() * 1000)
    produce_at(settings, [(u, now_ms - HOUR_MS) for u in sample_uploads(2)])
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "REDIS_URL": redis_url,
           "WORKER_INPUT_TOPIC": settings.worker_input_topic, "WORKER_LOG_FORMAT": "json",
           "WORKER_ENCODER": "reference"}
    since = datetime.fromtimestamp((now_ms - 2 * HOUR_MS) / 1000, UTC).isoformat()
    command = [sys.executable, "-m", "worker", "backfill-embeddings", "--dry-run", "--since"]

    result = subprocess.run([*command, since], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"read": 2, "undecodable": 0, "already_stored": 0, "stored": 2,
                                         "dry_run": True}

    naive = subprocess.run([*command, since[:19]], env=env, capture_output=True, text=True, timeout=120)
    assert naive.returncode == 2 and "has no time zone" in naive.stderr
