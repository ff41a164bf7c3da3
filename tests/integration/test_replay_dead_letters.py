"""Dead letters go back to their source topic once their cause is mended, headers and all: through a real
worker, the real broker and `replay_dead_letters` (what `python -m worker replay-dead-letters` runs)."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Producer

from tests.avro_history import history_schema
from tests.integration.worker_harness import read_dead_letters, read_outputs, read_to_end, running_worker
from worker import avro
from worker.avro import FINGERPRINT_HEADER, PlainAvroCodec, load_schema, writer_schemas
from worker.bookmarks import NewerSchema
from worker.decode import DEAD_LETTER_REASONS
from worker.replay import REPLAYED_FROM_HEADER, replay_dead_letters
from worker.sample import sample_uploads, upload_record
from worker.settings import Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = pytest.mark.integration


@pytest.fixture()
def schema_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of schemas/ that a test adds a history version to, as a worker upgrade would."""
    copy = tmp_path / "schemas"
    shutil.copytree(avro.SCHEMA_DIR, copy)
    monkeypatch.setattr(avro, "SCHEMA_DIR", copy)
    load_schema.cache_clear()
    writer_schemas.cache_clear()
    yield copy
    load_schema.cache_clear()
    writer_schemas.cache_clear()


def newer_producer_schema() -> dict[str, object]:
    """VideoUploaded as a producer upgraded before the workers writes it: one more field."""
    schema = json.loads(load_schema("VideoUploaded").text)
    schema["fields"].append({"name": "duration_s", "type": "long", "default": 0})
    return schema


def written_with(schema: dict[str, object], record: dict[str, object]) -> tuple[bytes, list[tuple[str, bytes]]]:
    parsed = fastavro.parse_schema(schema)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    fingerprint = fastavro.schema.fingerprint(fastavro.schema.to_parsing_canonical_form(parsed), "CRC-64-AVRO")
    return buf.getvalue(), [(FINGERPRINT_HEADER, fingerprint.encode())]


def test_letters_of_a_mended_cause_are_replayed_once_with_their_headers_and_categorized(
    make_settings: Callable[..., Settings], schema_dir: Path,
) -> None:
    settings = make_settings()
    ensure_topics(settings, worker_topics(settings), partitions=1)
    upload = sample_uploads(1, "newer-schema")[0]
    schema = newer_producer_schema()
    value, headers = written_with(schema, upload_record(upload) | {"duration_s": 42})
    empty_text, empty_headers = PlainAvroCodec().dumps(
        upload_record(sample_uploads(1, "empty")[0]) | {"title": "https://bit.ly/x", "tags": [], "description": ""},
        load_schema("VideoUploaded"), settings.worker_input_topic)
    producer = Producer(settings.kafka_common())
    producer.produce(settings.worker_input_topic, value, upload.video_id.encode(), headers=headers)
    producer.produce(settings.worker_input_topic, empty_text, b"empty", headers=empty_headers)
    assert producer.flush(10) == 0

    with running_worker(settings):
        letters = read_dead_letters(settings, expected=2)
    by_reason = {letter["error_type"]: letter for letter in letters}
    assert set(by_reason) == {"unknown-schema", "empty-text"}
    assert by_reason["unknown-schema"]["original_headers"] == [{"key": FINGERPRINT_HEADER, "value": headers[0][1]}]

    # the workers are upgraded: they now know the producer's schema
    (schema_dir / "history" / "VideoUploaded.v3.avsc").write_text(json.dumps(schema))
    writer_schemas.cache_clear()
    unknown_schema = ["unknown-schema"]
    assert replay_dead_letters(settings, unknown_schema, dry_run=True).replayed == {"unknown-schema": 1}
    assert replay_dead_letters(settings, unknown_schema).replayed == {"unknown-schema": 1}  # a dry run moves nothing
    assert replay_dead_letters(settings, unknown_schema).replayed == {}  # its bookmark moved
    assert replay_dead_letters(settings, ["empty-text"], dry_run=True).replayed == {"empty-text": 1}  # still waits
    assert replay_dead_letters(settings, DEAD_LETTER_REASONS, dry_run=True).replayed == {"empty-text": 1}  # --all

    inputs = read_to_end(settings, settings.worker_input_topic)
    assert len(inputs) == 3, "only the unknown-schema letter was replayed, once"
    replayed = inputs[-1]
    assert (replayed.key(), replayed.value()) == (upload.video_id.encode(), value)
    dlq_offset = [letter["error_type"] for letter in letters].index("unknown-schema")  # one partition, in order
    replayed_from = f"{settings.worker_dlq_topic}/0/{dlq_offset}".encode()
    assert replayed.headers() == [headers[0], (REPLAYED_FROM_HEADER, replayed_from)]

    with running_worker(settings):
        (output,) = read_outputs(settings, expected=1)
    assert output["video_id"] == upload.video_id


def test_letters_from_before_the_headers_field_replay_without_headers(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    ensure_topics(settings, worker_topics(settings), partitions=1)
    v1 = history_schema("DeadLetter")
    letter = {"original_key": b"k", "original_value": b"\x02v", "source_topic": settings.worker_input_topic,
              "source_partition": 0, "source_offset": 7, "error_type": "missing-field",
              "error_message": "ValueError: ...", "failed_at": 1}
    value, headers = PlainAvroCodec().dumps(letter, v1, settings.worker_dlq_topic)
    producer = Producer(settings.kafka_common())
    producer.produce(settings.worker_dlq_topic, value, b"k", headers=headers)
    assert producer.flush(10) == 0

    assert replay_dead_letters(settings, ["missing-field"]).replayed == {"missing-field": 1}

    (replayed,) = read_to_end(settings, settings.worker_input_topic)
    assert (replayed.key(), replayed.value()) == (b"k", b"\x02v")
    assert replayed.headers() == [(REPLAYED_FROM_HEADER, f"{settings.worker_dlq_topic}/0/0".encode())]


def test_a_record_that_is_no_dead_letter_is_passed_over_not_stopped_at(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    ensure_topics(settings, worker_topics(settings), partitions=1)
    letter = {"original_key": b"k", "original_value": b"\x02v", "source_topic": settings.worker_input_topic,
              "source_partition": 0, "source_offset": 7, "error_type": "missing-field",
              "error_message": "ValueError: ...", "failed_at": 1}
    value, headers = PlainAvroCodec().dumps(letter, history_schema("DeadLetter", 1), settings.worker_dlq_topic)
    producer = Producer(settings.kafka_common())
    producer.produce(settings.worker_dlq_topic, b"written by something else", b"junk")
    producer.produce(settings.worker_dlq_topic, value, b"k", headers=headers)
    assert producer.flush(10) == 0

    assert replay_dead_letters(settings, ["missing-field"]).replayed == {"missing-field": 1}
    assert replay_dead_letters(settings, ["missing-field"], dry_run=True).replayed == {}  # moved past both
    (replayed,) = read_to_end(settings, settings.worker_input_topic)
    assert replayed.value() == b"\x02v"


def test_a_letter_cut_to_fit_is_not_replayed(make_settings: Callable[..., Settings]) -> None:
    """Its kept bytes would only come back as a new letter: it is counted, passed over and left in the topic."""
    settings = make_settings()
    ensure_topics(settings, worker_topics(settings), partitions=1)
    letter = {"original_key": b"k", "original_value": b"\x02v", "original_headers": [],
              "source_topic": settings.worker_input_topic, "source_partition": 0, "source_offset": 7,
              "error_type": "avro-decode", "failed_at": 1}
    codec, schema = PlainAvroCodec(), load_schema("DeadLetter")
    producer = Producer(settings.kafka_common())
    for cut in (True, False):
        value, headers = codec.dumps({**letter, "error_message": f"cut {cut}", "original_cut": cut}, schema,
                                     settings.worker_dlq_topic)
        producer.produce(settings.worker_dlq_topic, value, b"k", headers=headers)
    assert producer.flush(10) == 0

    summary = replay_dead_letters(settings, ["avro-decode"])
    assert (summary.replayed, summary.not_replayable) == ({"avro-decode": 1}, {"avro-decode": 1})
    assert len(read_to_end(settings, settings.worker_input_topic)) == 1
    assert replay_dead_letters(settings, ["avro-decode"], dry_run=True).as_json() == {
        "replayed": {}, "dry_run": True, "not_replayable": {}}  # the bookmark moved past both


def test_a_letter_of_a_newer_dead_letter_version_stops_the_run_and_moves_no_bookmark(
    make_settings: Callable[..., Settings],
) -> None:
    """An unknown fingerprint may be a newer DeadLetter that an upgraded tool reads: never passed over."""
    settings = make_settings()
    ensure_topics(settings, worker_topics(settings), partitions=1)
    newer = json.loads(load_schema("DeadLetter").text)
    newer["fields"].append({"name": "attempts", "type": "int", "default": 0})
    letter = {"original_key": b"k", "original_value": b"\x02v", "original_headers": [],
              "source_topic": settings.worker_input_topic, "source_partition": 0, "source_offset": 7,
              "error_type": "avro-decode", "error_message": "-", "failed_at": 1, "original_cut": False, "attempts": 2}
    value, headers = written_with(newer, letter)
    producer = Producer(settings.kafka_common())
    producer.produce(settings.worker_dlq_topic, value, b"k", headers=headers)
    assert producer.flush(10) == 0

    with pytest.raises(NewerSchema, match="newer DeadLetter version"):
        replay_dead_letters(settings, ["avro-decode"])
    with pytest.raises(NewerSchema):  # still there: the bookmark did not move past it
        replay_dead_letters(settings, ["avro-decode"], dry_run=True)
    assert read_to_end(settings, settings.worker_input_topic) == []

