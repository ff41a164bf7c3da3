import contextlib
import dataclasses
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fastavro
import pytest
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.avro_history import history_schema
from tests.registry_stub import lookup_only_registry
from worker.avro import (
    FINGERPRINT_HEADER,
    PlainAvroCodec,
    RegistryCodec,
    RegistryUnavailable,
    SchemaNotRegistered,
    UnknownWriterSchema,
    load_schema,
    make_codec,
    output_schemas,
)
from worker.encode import categorized_record, dead_letter_record
from worker.records import Categorized, CategoryScore, DeadLetter, SourceRef
from worker.sample import sample_uploads, upload_record
from worker.settings import Settings

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
        embedding_stored=True, event_time_ms=1, processed_time_ms=2, source=SourceRef("t", 0, 0),
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


def test_categorized_events_say_whether_the_embedding_was_stored_and_v2_readers_skip_it() -> None:
    codec, current, v2 = PlainAvroCodec(), load_schema("VideoCategorized"), history_schema("VideoCategorized", 2)
    record = categorized_record(dataclasses.replace(_categorized_event(0.25), embedding_stored=False))
    value, headers = codec.dumps(record, current, "t")
    assert codec.loads(value, headers, current, "t")["embedding_stored"] is False
    read_by_v2 = fastavro.schemaless_reader(io.BytesIO(value), current.parsed, v2.parsed)
    assert read_by_v2["embedding_key"] == "videocat:emb:video:v" and "embedding_stored" not in read_by_v2
    v2_value, v2_headers = codec.dumps({k: v for k, v in record.items() if k != "embedding_stored"}, v2, "t")
    assert codec.loads(v2_value, v2_headers, current, "t")["embedding_stored"] is None  # unknown, not False


def test_a_fingerprint_header_is_read_in_the_forms_other_avro_libraries_write() -> None:
    v1 = history_schema("VideoUploaded")
    value, _ = PlainAvroCodec().dumps({"video_id": "v1", "title": "old", "description": "", "tags": [],
                                       "uploaded_at": 5}, v1, "t")
    java_long_hex = bytes.fromhex(v1.fingerprint)[::-1].hex().lstrip("0").upper()  # Long.toHexString's
    for header in (v1.fingerprint.encode(), v1.fingerprint.upper().encode(), java_long_hex.encode(),
                   bytes.fromhex(v1.fingerprint)):  # the last: 8 raw bytes, single-object encoding's order
        assert PlainAvroCodec().loads(value, [(FINGERPRINT_HEADER, header)], SCHEMA, "t")["video_id"] == "v1"


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


# --- writing with a registry: the ids of our schemas, resolved ahead (RegistryCodec.prepare) -------------

class _FixedAnswer(BaseHTTPRequestHandler):
    status = 503

    def log_message(self, *_args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"error_code": self.status * 100 + 1, "message": "no"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def registry_answering(status: int) -> Iterator[str]:
    handler = type("Answer", (_FixedAnswer,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _dead_letter() -> dict[str, object]:
    return dead_letter_record(DeadLetter(SourceRef("t", 0, 0), b"k", b"", "empty-message", "no value", ()))


def test_writing_while_the_registry_cannot_be_reached_is_unavailable() -> None:
    with pytest.raises(RegistryUnavailable):  # port 1: connection refused
        RegistryCodec("http://127.0.0.1:1").dumps(_dead_letter(), load_schema("DeadLetter"), "dlq")


def test_a_registry_refusing_our_credentials_is_unavailable_but_one_refusing_our_schema_is_not() -> None:
    with registry_answering(401) as url, pytest.raises(RegistryUnavailable):
        RegistryCodec(url).prepare(load_schema("DeadLetter"), "dlq")
    with registry_answering(409) as url, pytest.raises(SchemaRegistryError) as refused:
        RegistryCodec(url).prepare(load_schema("DeadLetter"), "dlq")  # incompatible: a deployment error
    assert not isinstance(refused.value, RegistryUnavailable)


def test_once_prepared_writing_asks_the_registry_nothing_and_matches_confluents_serializer() -> None:
    codec = RegistryCodec("mock://test-avro-prepare")
    schema, record = load_schema("DeadLetter"), _dead_letter()
    codec.prepare(schema, "dlq")
    codec._client = None  # type: ignore[assignment]  # any registry call now fails
    value, headers = codec.dumps(record, schema, "dlq")
    assert headers == [] and value[0] == 0
    reference = RegistryCodec("mock://test-avro-reference")
    serializer = AvroSerializer(reference._client, schema.text)  # what RegistryCodec used to write with
    expected = serializer(dict(record), SerializationContext("dlq", MessageField.VALUE))
    assert value == expected  # same framing, same id (the same schema text registered), same bytes


def test_output_schemas_name_every_schema_the_worker_writes() -> None:
    settings = Settings(worker_output_topic="out", worker_dlq_topic="dlq", worker_review_topic="")
    assert [(s.name, t) for s, t in output_schemas(settings)] == [("VideoCategorized", "out"), ("DeadLetter", "dlq")]
    with_review = settings.model_copy(update={"worker_review_topic": "review"})
    assert ("ReviewRequest", "review") in [(s.name, t) for s, t in output_schemas(with_review)]
    PlainAvroCodec().prepare(load_schema("DeadLetter"), "dlq")  # nothing to resolve without a registry



def test_lookup_only_mode_takes_the_registered_id_and_never_registers() -> None:
    schema = load_schema("DeadLetter")
    with lookup_only_registry() as registry:
        with pytest.raises(SchemaNotRegistered, match="DeadLetter .* not registered under dlq-value"):
            RegistryCodec(registry.url, auto_register=False).prepare(schema, "dlq")
        registry.registered[("dlq-value", schema.text.strip())] = 7
        codec = RegistryCodec(registry.url, auto_register=False)
        codec.prepare(schema, "dlq")
        value, _ = codec.dumps(_dead_letter(), schema, "dlq")
        with pytest.raises(RegistryUnavailable, match="registering dlq-value.*AUTO_REGISTER=false"):  # 403
            RegistryCodec(registry.url).prepare(schema, "dlq")
    assert value[:5] == b"\x00" + (7).to_bytes(4, "big")
    assert registry.paths == ["/subjects/dlq-value", "/subjects/dlq-value", "/subjects/dlq-value/versions"]


def test_the_registration_mode_comes_from_the_settings() -> None:
    codec = make_codec(Settings(schema_registry_url="mock://mode", schema_registry_auto_register=False))
    assert isinstance(codec, RegistryCodec) and not codec._auto_register
