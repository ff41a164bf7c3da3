import io

import fastavro
import pytest

from tests.avro_history import history_schema
from worker.avro import (
    FINGERPRINT_HEADER,
    PlainAvroCodec,
    RegistryCodec,
    RegistryUnavailable,
    UnknownWriterSchema,
    load_schema,
)
from worker.encode import categorized_record
from worker.records import Categorized, CategoryScore, SourceRef
from worker.sample import sample_uploads, upload_record

SCHEMA = load_schema("VideoUploaded")


def test_round_trip_with_the_current_schema() -> None:
    codec = PlainAvroCodec()
    record = upload_record(sample_uploads(1)[0])
    value, headers = codec.dumps(record, SCHEMA, "t")
    decoded = codec.loads(value, headers, SCHEMA, "t")
    assert decoded["video_id"] == record["video_id"]
    assert decoded["tags"] == record["tags"]
    assert int(decoded["uploaded_at"].timestamp() * 1000) == record["uploaded_at"]


def test_old_schema_event_reads_with_the_new_schema() -> None:
    codec = PlainAvroCodec()
    v1 = {"video_id": "v1", "title": "old", "description": "", "tags": ["a"], "uploaded_at": 5}
    value, headers = codec.dumps(v1, history_schema("VideoUploaded"), "t")
    decoded = codec.loads(value, headers, SCHEMA, "t")
    assert decoded["video_id"] == "v1" and decoded["language"] is None and decoded["channel_id"] is None


def _categorized_event(confidence: float) -> Categorized:
    return Categorized(
        video_id="v", categories=(CategoryScore("Music", 0.9),), top_label="Music", top_score=0.9,
        confidence=confidence, language="pt", model_version="head-x", embedding_key="videocat:emb:video:v",
        event_time_ms=1, processed_time_ms=2, source=SourceRef("t", 0, 0),
    )


def test_categorized_events_carry_the_confidence_and_stay_readable_across_the_schema_change() -> None:
    codec, current, old = PlainAvroCodec(), load_schema("VideoCategorized"), history_schema("VideoCategorized")
    value, headers = codec.dumps(categorized_record(_categorized_event(0.25)), current, "t")
    assert codec.loads(value, headers, current, "t")["confidence"] == pytest.approx(0.25)
    # a recommender still on v1 reads the new events (the added field is skipped)
    read_by_old = fastavro.schemaless_reader(io.BytesIO(value), current.parsed, old.parsed)
    assert read_by_old["top_label"] == "Music" and "confidence" not in read_by_old
    # an event a v1 worker wrote reads with the current schema: confidence unknown
    v1_record = {k: v for k, v in categorized_record(_categorized_event(0.25)).items() if k != "confidence"}
    v1_value, v1_headers = codec.dumps(v1_record, old, "t")
    decoded = codec.loads(v1_value, v1_headers, current, "t")
    assert decoded["confidence"] is None and decoded["top_score"] == pytest.approx(0.9)


def test_unknown_writer_fingerprint_is_refused() -> None:
    with pytest.raises(UnknownWriterSchema):
        PlainAvroCodec().loads(b"\x00", [(FINGERPRINT_HEADER, b"deadbeef")], SCHEMA, "t")


def test_a_registry_that_cannot_be_reached_is_unavailable_not_an_unknown_schema() -> None:
    framed = b"\x00" + (5).to_bytes(4, "big") + b"\x02v"
    with pytest.raises(RegistryUnavailable):
        RegistryCodec("http://127.0.0.1:1").loads(framed, None, SCHEMA, "t")  # port 1: connection refused


def test_trailing_bytes_are_refused() -> None:
    codec = PlainAvroCodec()
    value, headers = codec.dumps(upload_record(sample_uploads(1)[0]), SCHEMA, "t")
    with pytest.raises(ValueError, match="trailing"):
        codec.loads(value + b"junk", headers, SCHEMA, "t")


def test_registry_framing_round_trip_on_the_mock_registry() -> None:
    codec = RegistryCodec("mock://test-avro")
    record = upload_record(sample_uploads(1)[0])
    value, headers = codec.dumps(record, SCHEMA, "uploads")
    assert value[0] == 0 and headers == []  # magic byte, then the 4-byte schema id
    assert codec.loads(value, None, SCHEMA, "uploads")["title"] == record["title"]
