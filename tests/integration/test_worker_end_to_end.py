"""Real broker, real Redis, real MUSE + head: the whole path, as issue #2 specifies."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import redis
from confluent_kafka import Producer

from tests.integration.worker_harness import (
    committed_and_end_offsets,
    end_offsets,
    metric,
    read_dead_letters,
    read_outputs,
    running_worker,
    wait_for,
)
from worker.avro import PlainAvroCodec, load_schema
from worker.cache import video_key
from worker.classify import load_classifier
from worker.encoders import muse_identity
from worker.sample import SAMPLES, produce_uploads, sample_uploads, upload_record
from worker.settings import Settings
from worker.text import build_texts
from worker.topics import ensure_topics, worker_topics

pytestmark = pytest.mark.integration
PARTITIONS = 4


def distinct_uploads(count: int, prefix: str) -> list:
    """`count` uploads over every sample language, each with a text distinct from any earlier run's."""
    run = uuid.uuid4().hex[:8]
    uploads = sample_uploads(count, prefix)
    return [dataclasses.replace(u, title=f"{u.title} ({run} {i})") for i, u in enumerate(uploads)]


def encoder_texts(uploads: list, model_dir: Path) -> int:
    """How many texts the worker embeds for these uploads: each full text and the head's embed views."""
    head = load_classifier(model_dir, muse_identity())
    built = [build_texts(u.title, u.tags, u.description, head.embed_views, head.text_max_chars) for u in uploads]
    return sum(1 + len(views) for _, views in built)



def test_500_uploads_are_categorized_cached_and_committed(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    ensure_topics(settings, worker_topics(settings), partitions=PARTITIONS)
    uploads = distinct_uploads(500, "e2e")
    assert len({lang for lang, *_ in SAMPLES}) >= 8
    produce_uploads(settings, uploads)

    with running_worker(settings) as worker:
        outputs = read_outputs(settings, expected=500)
        ends = end_offsets(settings, settings.worker_input_topic, PARTITIONS)
        assert sum(ends) == 500
        wait_for(lambda: committed_and_end_offsets(settings, PARTITIONS)[0] == ends)
        labels = set(worker.model_labels)

        assert len(outputs) == 500
        assert {o["video_id"] for o in outputs} == {u.video_id for u in uploads}
        client = redis.Redis.from_url(settings.redis_url)
        namespace = worker.video_namespace
        assert namespace.startswith(muse_identity().short + "/t")
        for output in outputs:
            assert output["top_label"] in labels
            assert output["categories"][0]["label"] == output["top_label"]
            assert output["model_version"] == worker.model_version
            assert output["embedding_key"] == video_key(namespace, output["video_id"])
            assert output["embedding_stored"] is True
            vector = np.frombuffer(client.get(output["embedding_key"]), dtype="<f4")
            assert vector.shape == (512,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
        assert {o["language"] for o in outputs} >= {"en", "fr", "de", "es", "ja", "ru", "ar", "zh"}
        misses_before = metric(worker, "videocat_cache_misses_total")
        hits_before = metric(worker, "videocat_cache_hits_total")
        assert misses_before == encoder_texts(uploads, settings.worker_model_dir) >= 500

        again = [dataclasses.replace(u, video_id=f"again-{i}") for i, u in enumerate(uploads[:100])]
        produce_uploads(settings, again)
        read_outputs(settings, expected=600)
        hits = encoder_texts(again, settings.worker_model_dir)
        wait_for(lambda: metric(worker, "videocat_cache_hits_total") - hits_before == hits)
        assert metric(worker, "videocat_cache_misses_total") == misses_before  # no new embedding work
        assert client.get(video_key(namespace, "again-0")) == client.get(video_key(namespace, uploads[0].video_id))

    committed, ends = committed_and_end_offsets(settings, PARTITIONS)
    assert committed == ends and sum(ends) == 600


def test_bad_events_go_to_the_dead_letter_topic_and_the_worker_goes_on(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    ensure_topics(settings, worker_topics(settings), partitions=1)
    codec, schema = PlainAvroCodec(), load_schema("VideoUploaded")
    good = sample_uploads(2, "good")
    missing, _ = codec.dumps(upload_record(good[0]) | {"title": ""}, schema, settings.worker_input_topic)
    empty, headers = codec.dumps(upload_record(good[0]) | {"title": "https://x.io/a", "tags": [], "description": ""},
                                 schema, settings.worker_input_topic)
    producer = Producer(settings.kafka_common())
    producer.produce(settings.worker_input_topic, b"\x00\xffrandom bytes\x13", b"bad-1")
    producer.produce(settings.worker_input_topic, missing, b"bad-2", headers=headers)
    producer.produce(settings.worker_input_topic, empty, b"bad-3", headers=headers)
    producer.flush(10)
    produce_uploads(settings, good)

    with running_worker(settings) as worker:
        letters = read_dead_letters(settings, expected=3)
        outputs = read_outputs(settings, expected=2)
        wait_for(lambda: committed_and_end_offsets(settings, 1)[0] == [5])
        assert metric(worker, "videocat_events_dead_lettered_total", {"reason": "empty-text"}) == 1

    assert [(d["original_key"], d["error_type"]) for d in letters] == [
        (b"bad-1", "avro-decode"), (b"bad-2", "missing-field"), (b"bad-3", "empty-text")]
    assert [d["source_offset"] for d in letters] == [0, 1, 2]
    assert letters[0]["original_value"] == b"\x00\xffrandom bytes\x13"
    assert all(d["source_topic"] == settings.worker_input_topic and d["error_message"] for d in letters)
    assert {o["video_id"] for o in outputs} == {u.video_id for u in good}
