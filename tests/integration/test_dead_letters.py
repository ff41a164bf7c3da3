"""Every kind of bad input, through a real worker: each lands in the dead-letter topic with its reason,
original bytes and source coordinates, and the worker goes on (good events sent after them are
categorized). A 10 MB description is not an error: it is cut to the text budget and categorized.
Inputs too large for their outputs (a 2 MB undecodable message, a huge video id) are dead-lettered within
the producer's message size limit instead of stopping the worker.

The decoder's own unit tests (tests/unit/test_decode.py, incl. the hypothesis property test) cover the
same kinds without a broker; here the point is the whole path: decode -> DLQ produce -> commit.
"""

from __future__ import annotations

import io
import os
import struct
import time
from collections.abc import Callable

import fastavro
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient
from structlog.testing import capture_logs

from tests.integration.worker_harness import (
    committed_and_end_offsets,
    committed_offsets,
    read_dead_letters,
    read_outputs,
    running_worker,
    wait_for,
)
from worker.avro import FINGERPRINT_HEADER, PlainAvroCodec, load_schema
from worker.encode import DEAD_LETTER_MAX_BYTES, KEPT_KEY_BYTES, REVIEW_TEXT_MAX_CHARS
from worker.readback import read_records
from worker.sample import produce_uploads, sample_uploads, upload_record
from worker.settings import DeliveryMode, Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = pytest.mark.integration
TEN_MB = 10 * 1024 * 1024
CODEC, SCHEMA = PlainAvroCodec(), load_schema("VideoUploaded")


def encoded(**changes: object) -> tuple[bytes, list[tuple[str, bytes]]]:
    return CODEC.dumps(upload_record(sample_uploads(1, "dlq")[0]) | changes, SCHEMA, "any")


def incompatible_schema_event() -> tuple[bytes, list[tuple[str, bytes]]]:
    """Written with a VideoUploaded schema this worker does not know (no title, a different shape)."""
    schema = fastavro.parse_schema({"type": "record", "name": "VideoUploaded", "namespace": "video.events",
                                    "fields": [{"name": "video_id", "type": "string"},
                                               {"name": "views", "type": "long"}]})
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, {"video_id": "v-incompatible", "views": 3})
    fingerprint = fastavro.schema.fingerprint(fastavro.schema.to_parsing_canonical_form(schema), "CRC-64-AVRO")
    return buf.getvalue(), [(FINGERPRINT_HEADER, fingerprint.encode())]


def bad_inputs() -> dict[str, tuple[bytes | None, list[tuple[str, bytes]]]]:
    """Input kind (also the message key) -> (value, headers)."""
    valid, headers = encoded(title="ABCDEFGH")
    return {
        "random-bytes": (b"\x00\xff\x13\x37 definitely not avro \x80\x81", []),
        "truncated-avro": (valid[: len(valid) // 2], headers),
        "incompatible-schema": incompatible_schema_event(),
        "unknown-schema-fingerprint": (valid, [(FINGERPRINT_HEADER, b"ffffffffffffffff")]),
        "missing-required-field": encoded(video_id=""),
        "empty-text": encoded(title="https://bit.ly/x", tags=["#", "@"], description="--- ---"),
        "invalid-utf8": (valid.replace(b"ABCDEFGH", b"AB\xff\xfe\xfdFGH"), headers),
        "tombstone": (None, []),
    }


EXPECTED_REASONS = {
    "random-bytes": "avro-decode",
    "truncated-avro": "avro-decode",
    "incompatible-schema": "unknown-schema",
    "unknown-schema-fingerprint": "unknown-schema",
    "missing-required-field": "missing-field",
    "empty-text": "empty-text",
    "invalid-utf8": "invalid-utf8",
    "tombstone": "empty-message",
}


def test_each_bad_input_is_dead_lettered_with_its_reason_and_the_worker_goes_on(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    ensure_topics(settings, worker_topics(settings), partitions=1)
    bad = bad_inputs()
    before, huge, after = sample_uploads(1, "before")[0], sample_uploads(1, "huge")[0], sample_uploads(2, "after")
    producer = Producer({**settings.kafka_common(), "message.max.bytes": 2 * TEN_MB})
    produce_uploads(settings, [before], producer)
    for kind, (value, headers) in bad.items():
        producer.produce(settings.worker_input_topic, value, kind.encode(), headers=headers)
    huge_value, huge_headers = CODEC.dumps(upload_record(huge) | {"description": "palabra " * (TEN_MB // 8)},
                                           SCHEMA, settings.worker_input_topic)
    assert len(huge_value) > TEN_MB
    producer.produce(settings.worker_input_topic, huge_value, huge.video_id.encode(), headers=huge_headers)
    assert producer.flush(30) == 0, "the broker did not accept the messages (incl. the 10 MB one)"
    produce_uploads(settings, after, producer)
    total = 1 + len(bad) + 1 + len(after)

    with running_worker(settings):
        letters = read_dead_letters(settings, expected=len(bad))
        outputs = read_outputs(settings, expected=4)
        deadline = time.monotonic() + 60
        while committed_and_end_offsets(settings, 1)[0] != [total]:
            assert time.monotonic() < deadline, "offsets not committed past the bad inputs"
            time.sleep(0.5)

    by_kind = {d["original_key"].decode(): d for d in letters}
    assert {kind: d["error_type"] for kind, d in by_kind.items()} == EXPECTED_REASONS
    for offset, (kind, (value, _headers)) in enumerate(bad.items(), start=1):
        letter = by_kind[kind]
        assert letter["original_value"] == value, kind
        assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == (
            settings.worker_input_topic, 0, offset), kind
        assert letter["error_message"], kind
    assert {o["video_id"] for o in outputs} == {before.video_id, huge.video_id} | {u.video_id for u in after}


@pytest.mark.parametrize("delivery", [DeliveryMode.AT_LEAST_ONCE, DeliveryMode.EXACTLY_ONCE])
def test_inputs_too_large_for_their_outputs_are_dead_lettered_and_the_worker_goes_on(
    make_settings: Callable[..., Settings], unique_name: str, delivery: DeliveryMode,
) -> None:
    """The worker's producer refuses messages over 1,000,000 bytes (librdkafka's message.max.bytes). Before the
    fix the first of these inputs raised MSG_SIZE_TOO_LARGE out of the loop: the worker died on it after every
    restart. Now: a capped dead letter (its message key cut as in the letter), an `output-too-large` letter
    for the huge video id (its output and review copy cannot be written), a review copy with its description
    cut, and every offset committed."""
    settings = make_settings(worker_review_topic=f"{unique_name}-review", worker_review_sample_rate=1.0,
                             worker_delivery=delivery)
    ensure_topics(settings, worker_topics(settings), partitions=1)
    garbage = os.urandom(2 * 1024 * 1024)
    long_text = sample_uploads(1, "long-text")[0]
    producer = Producer({**settings.kafka_common(), "message.max.bytes": 2 * TEN_MB})
    garbage_key = b"garbage-" * (64 * 1024)  # 512 KiB: with the whole key the letter's message was too large
    producer.produce(settings.worker_input_topic, garbage, garbage_key)
    for record in (upload_record(sample_uploads(1, "huge-id")[0]) | {"video_id": "v" * 600_000},
                   upload_record(long_text) | {"description": "palabra " * (2 * 1024 * 1024 // 8)}):
        value, headers = CODEC.dumps(record, SCHEMA, settings.worker_input_topic)
        producer.produce(settings.worker_input_topic, value, record["video_id"].encode(), headers=headers)
    assert producer.flush(30) == 0
    after = sample_uploads(2, "after")
    produce_uploads(settings, after, producer)

    with capture_logs() as logs, running_worker(settings):
        letters = read_dead_letters(settings, expected=2)
        outputs = read_outputs(settings, expected=3)
        copies = list(read_records(settings, settings.worker_review_topic, "ReviewRequest", idle_timeout_s=60,
                                   until=lambda r: len({c["video_id"] for c in r}) >= 3))
        deadline = time.monotonic() + 60
        while committed_and_end_offsets(settings, 1)[0] != [5]:
            assert time.monotonic() < deadline, "offsets not committed past the oversized inputs"
            time.sleep(0.5)

    undecodable, too_large = sorted(letters, key=lambda d: d["source_offset"])
    assert (undecodable["source_offset"], undecodable["original_key"]) == (0, garbage_key[:KEPT_KEY_BYTES])
    assert undecodable["error_type"] in {"avro-decode", "invalid-utf8"}  # random bytes: either, by chance
    kept = undecodable["original_value"]
    room = DEAD_LETTER_MAX_BYTES - KEPT_KEY_BYTES  # the letter keeps the key's first 16 KiB too
    assert garbage.startswith(kept) and room - 4096 < len(kept) < room
    assert f"original_value {len(kept)} of {len(garbage)} bytes kept" in undecodable["error_message"]
    assert (too_large["source_offset"], too_large["error_type"], too_large["original_value"]) == (
        1, "output-too-large", None)
    assert too_large["original_key"] == b"v" * KEPT_KEY_BYTES and "MSG_SIZE_TOO_LARGE" in too_large["error_message"]
    assert {o["video_id"] for o in outputs} == {long_text.video_id} | {u.video_id for u in after}
    copy = next(c for c in copies if c["video_id"] == long_text.video_id)
    assert copy["description"].startswith("palabra ") and len(copy["description"]) <= REVIEW_TEXT_MAX_CHARS
    assert "v" * 600_000 not in {c["video_id"] for c in copies}
    events = [e["event"] for e in logs]
    assert events.count("output_dead_lettered") == 1 and events.count("review_copy_dropped") == 1
    assert "dead_letter_sent_without_key" not in events  # each letter's message key is its kept key


# --- Schema Registry framing ---------------------------------------------------------------------

@pytest.fixture()
def shared_mock_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mock://` registries are per client object; make the test's producer and the in-process worker
    share one, as they would share a real registry."""
    registry = MockSchemaRegistryClient({"url": "mock://dead-letters"})
    monkeypatch.setattr(SchemaRegistryClient, "new_client", staticmethod(lambda _conf: registry))


def registry_framed_dead_letters(settings: Settings, expected: int) -> list[dict[str, object]]:
    """DLQ records in registry framing: magic byte 0, a 4-byte schema id, then the Avro binary."""
    consumer = Consumer({**settings.kafka_common(), "group.id": "dlq-reader", "enable.partition.eof": True})
    consumer.assign([TopicPartition(settings.worker_dlq_topic, 0, 0)])
    schema = load_schema("DeadLetter").parsed
    records: list[dict[str, object]] = []
    deadline = time.monotonic() + 60
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for message in consumer.consume(10, timeout=0.5):
                if message.error() is None or message.error().code() != KafkaError._PARTITION_EOF:
                    value = message.value()
                    assert value[0] == 0 and struct.unpack(">I", value[1:5])[0] > 0
                    records.append(fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, schema))
    finally:
        consumer.close()
    return records


def test_registry_framed_message_with_an_unknown_schema_id_is_dead_lettered(
    make_settings: Callable[..., Settings], shared_mock_registry: None,
) -> None:
    settings = make_settings(schema_registry_url="mock://dead-letters")
    ensure_topics(settings, worker_topics(settings), partitions=1)
    unknown_id = b"\x00" + struct.pack(">I", 99_999) + b"\x02abc"
    producer = Producer(settings.kafka_common())
    producer.produce(settings.worker_input_topic, unknown_id, b"unknown-id")
    producer.flush(10)
    good = sample_uploads(1, "registry")
    produce_uploads(settings, good, producer)

    with running_worker(settings):
        letters = registry_framed_dead_letters(settings, expected=1)
        outputs = read_outputs(settings, expected=1)

    assert [(d["original_key"], d["error_type"], d["source_offset"]) for d in letters] == [
        (b"unknown-id", "unknown-schema", 0)]
    assert letters[0]["original_value"] == unknown_id
    assert [o["video_id"] for o in outputs] == [good[0].video_id]


def test_exactly_once_a_dead_letter_is_committed_with_its_own_offset(
    make_settings: Callable[..., Settings], unique_name: str
) -> None:
    """A dead letter becomes visible in the transaction that commits its offset. Sent as soon as it was
    decoded, behind an upload still waiting for its batch, it was committed with offsets that stopped
    before that upload: after a crash the restart read both again and wrote the letter twice."""
    settings = make_settings(worker_delivery=DeliveryMode.EXACTLY_ONCE, worker_transactional_id=f"{unique_name}-tx",
                             worker_batch_max_wait_ms=4000)
    ensure_topics(settings, worker_topics(settings), partitions=1)
    produce_uploads(settings, sample_uploads(1, "waiting"))
    producer = Producer(settings.kafka_common())
    producer.produce(settings.worker_input_topic, b"not avro", b"garbage")
    producer.flush(10)

    with running_worker(settings):
        read_dead_letters(settings, expected=1)
        # a broker may show the offsets a moment after the transaction's outputs; far less than the 4 s wait
        wait_for(lambda: committed_offsets(settings, 1) == [2], 1.5,
                 "the letter was committed before the upload ahead of it")
        read_outputs(settings, expected=1)
