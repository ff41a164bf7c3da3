import io
import json

import fastavro
import pytest

from worker.avro import (
    FINGERPRINT_HEADER,
    SCHEMA_DIR,
    PlainAvroCodec,
    RegistryCodec,
    UnknownWriterSchema,
    load_schema,
)
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
    old = json.loads((SCHEMA_DIR / "history" / "VideoUploaded.v1.avsc").read_text())
    parsed_old = fastavro.parse_schema(old)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed_old, {"video_id": "v1", "title": "old", "description": "",
                                                 "tags": ["a"], "uploaded_at": 5})
    fingerprint = fastavro.schema.fingerprint(fastavro.schema.to_parsing_canonical_form(parsed_old), "CRC-64-AVRO")
    decoded = PlainAvroCodec().loads(buf.getvalue(), [(FINGERPRINT_HEADER, fingerprint.encode())], SCHEMA, "t")
    assert decoded["video_id"] == "v1" and decoded["language"] is None and decoded["channel_id"] is None


def test_unknown_writer_fingerprint_is_refused() -> None:
    with pytest.raises(UnknownWriterSchema):
        PlainAvroCodec().loads(b"\x00", [(FINGERPRINT_HEADER, b"deadbeef")], SCHEMA, "t")


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
