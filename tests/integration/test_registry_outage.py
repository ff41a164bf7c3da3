"""A schema registry outage is no fault of the messages: a worker holds them back and retries, and
categorizes them once the registry answers; none is dead-lettered. That holds for reading an input (a
writer schema id not seen yet) and for writing outputs (the ids of the worker's own schemas, resolved
before it consumes). Real worker, broker and model; the registry is a small HTTP stand-in
(tests/registry_stub.py) speaking the two calls the worker makes, with an off switch."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from tests.integration.worker_harness import (
    committed_and_end_offsets,
    metric,
    read_dead_letters,
    read_outputs,
    read_to_end,
    running_worker,
    wait_for,
)
from tests.registry_stub import fake_registry
from worker.avro import RegistryCodec, load_schema
from worker.records import VideoUploaded
from worker.sample import produce_uploads, sample_uploads, upload_record
from worker.settings import Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = pytest.mark.integration


def produce_framed(settings: Settings, codec: RegistryCodec, uploads: list[VideoUploaded]) -> None:
    """Uploads in registry framing with the id `codec` already holds: producing asks the registry nothing."""
    producer = Producer(settings.kafka_common())
    schema = load_schema("VideoUploaded")
    for upload in uploads:
        value, headers = codec.dumps(upload_record(upload), schema, settings.worker_input_topic)
        producer.produce(settings.worker_input_topic, value, upload.video_id.encode(), headers=headers)
    assert producer.flush(30) == 0



def test_a_registry_outage_holds_messages_back_and_dead_letters_none(
    make_settings: Callable[..., Settings],
) -> None:
    """Mid-run: the worker has resolved its output schemas, then meets inputs whose writer schema id it has not
    seen while the registry is down."""
    with fake_registry() as registry:
        settings = make_settings(schema_registry_url=registry.url)
        ensure_topics(settings, worker_topics(settings), partitions=1)
        producer_codec = RegistryCodec(registry.url)
        producer_codec.prepare(load_schema("VideoUploaded"), settings.worker_input_topic)  # the producer's id
        uploads = sample_uploads(3, "registry-outage")

        with running_worker(settings) as worker:
            wait_for(lambda: worker.health.ready()[0], 90, "the worker ready")
            registry.up = False
            produce_framed(settings, producer_codec, uploads)
            wait_for(lambda: metric(worker, "videocat_registry_retries_total") >= 2, 90,  # asked, held, asked again
                     "the worker retried the registry")
            assert metric(worker, "videocat_events_consumed_total") == 0
            assert committed_and_end_offsets(settings, 1)[0][0] < 0, "nothing is committed while held"
            registry.up = True
            outputs = read_outputs(settings, expected=len(uploads))
            wait_for(lambda: committed_and_end_offsets(settings, 1)[0] == [len(uploads)], 60,
                     "offsets committed after the registry came back")

    assert {o["video_id"] for o in outputs} == {u.video_id for u in uploads}
    assert read_to_end(settings, settings.worker_dlq_topic) == []


def test_a_worker_started_during_a_registry_outage_waits_for_it_to_write_anything(
    make_settings: Callable[..., Settings],
) -> None:
    """A tombstone is judged without the registry, but its dead letter is written in registry framing: a worker
    started during an outage used to die on it (registering the DeadLetter schema failed). It now resolves the
    ids of every schema it writes before it consumes: not ready and consuming nothing until the registry answers."""
    with fake_registry() as registry:
        settings = make_settings(schema_registry_url=registry.url)
        ensure_topics(settings, worker_topics(settings), partitions=1)
        producer = Producer(settings.kafka_common())
        producer.produce(settings.worker_input_topic, None, b"tombstone")
        assert producer.flush(30) == 0
        uploads = sample_uploads(2, "registry-down-at-start")
        produce_uploads(settings, uploads)  # registry framing: the producer registers the schema
        registry.up = False

        with running_worker(settings) as worker:
            wait_for(lambda: metric(worker, "videocat_registry_retries_total") >= 2, 60, "the worker retried")
            assert not worker.health.ready()[0] and worker.health.live()[0]
            assert metric(worker, "videocat_events_consumed_total") == 0
            assert committed_and_end_offsets(settings, 1)[0][0] < 0, "nothing is committed while waiting"
            registry.up = True
            outputs = read_outputs(settings, expected=len(uploads), timeout_s=60)
            letters = read_dead_letters(settings, expected=1)
            wait_for(lambda: committed_and_end_offsets(settings, 1)[0] == [1 + len(uploads)], 60,
                     "offsets committed after the registry came back")

    assert {o["video_id"] for o in outputs} == {u.video_id for u in uploads}
    assert [(d["original_key"], d["error_type"], d["source_offset"]) for d in letters] == [
        (b"tombstone", "empty-message", 0)]
