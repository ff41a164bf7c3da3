import io
import json

import fastavro
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.avro import FINGERPRINT_HEADER, PlainAvroCodec, load_schema
from worker.decode import Decoder
from worker.records import DeadLetter, SourceRef, Upload
from worker.sample import sample_uploads, upload_record

SOURCE = SourceRef("uploads", 3, 42)
CODEC = PlainAvroCodec()
SCHEMA = load_schema("VideoUploaded")
decoder = Decoder(CODEC, text_max_chars=512)


def encoded(**changes: object) -> tuple[bytes, list[tuple[str, bytes]]]:
    record = upload_record(sample_uploads(1)[0]) | changes
    return CODEC.dumps(record, SCHEMA, "uploads")


def dead_letter(value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> DeadLetter:
    result = decoder.decode(b"key", value, headers, SOURCE)
    assert isinstance(result, DeadLetter), result
    assert result.source == SOURCE and result.value == value and result.key == b"key"
    return result


def test_a_valid_event_becomes_an_upload_with_its_text() -> None:
    value, headers = encoded(title="Top goals", tags=["football"], description="", language="en")
    result = decoder.decode(b"k", value, headers, SOURCE)
    assert isinstance(result, Upload)
    assert result.text == "Top goals. football" and result.event.language == "en"
    assert result.event.uploaded_at_ms > 0


def test_the_models_embed_views_ride_along_on_the_upload() -> None:
    value, headers = encoded(title="Top goals", tags=["football"], description="Highlights of the cup final.")
    plain = decoder.decode(b"k", value, headers, SOURCE)
    with_views = Decoder(CODEC, 512, ("title_tags", "title")).decode(b"k", value, headers, SOURCE)
    assert isinstance(plain, Upload) and isinstance(with_views, Upload)
    assert plain.embed_with == () and with_views.text == plain.text
    assert with_views.embed_with == ("Top goals. football", "Top goals")


def test_random_bytes() -> None:
    assert dead_letter(b"\x13\x37 not avro at all").error_type == "avro-decode"


def test_truncated_avro() -> None:
    value, headers = encoded()
    assert dead_letter(value[: len(value) // 2], headers).error_type == "avro-decode"


def test_empty_message() -> None:
    assert dead_letter(None).error_type == "empty-message"


def test_missing_required_field() -> None:
    value, headers = encoded(video_id="")
    assert dead_letter(value, headers).error_type == "missing-field"


def test_schema_without_a_required_field_is_unknown_schema() -> None:
    schema = fastavro.parse_schema({"type": "record", "name": "VideoUploaded", "namespace": "video.events",
                                    "fields": [{"name": "video_id", "type": "string"}]})
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, {"video_id": "v"})
    fingerprint = fastavro.schema.fingerprint(fastavro.schema.to_parsing_canonical_form(schema), "CRC-64-AVRO")
    letter = dead_letter(buf.getvalue(), [(FINGERPRINT_HEADER, fingerprint.encode())])
    assert letter.error_type == "unknown-schema"


def test_empty_text_after_cleaning() -> None:
    value, headers = encoded(title="https://bit.ly/abc", tags=[], description="----")
    letter = dead_letter(value, headers)
    assert letter.error_type == "empty-text" and "no text left" in letter.error_message


def test_invalid_utf8_inside_a_string() -> None:
    value, headers = encoded(title="ABCDEFGH")
    broken = value.replace(b"ABCDEFGH", b"AB\xff\xfe\xfdFGH")
    assert dead_letter(broken, headers).error_type == "invalid-utf8"


def test_a_10_mb_description_is_cut_not_refused() -> None:
    value, headers = encoded(description="palabra " * 1_300_000)
    assert len(value) > 10_000_000
    result = decoder.decode(None, value, headers, SOURCE)
    assert isinstance(result, Upload) and len(result.text) <= 512


def test_registry_framed_message_with_unknown_schema_id() -> None:
    from worker.avro import RegistryCodec

    registry_decoder = Decoder(RegistryCodec("mock://decode-test"), 512)
    framed = b"\x00\x00\x00\x03\xe7" + b"\x02abc"
    result = registry_decoder.decode(None, framed, None, SOURCE)
    assert isinstance(result, DeadLetter) and result.error_type == "unknown-schema", result


def test_a_registry_writer_schema_that_does_not_resolve_to_ours_is_a_schema_problem() -> None:
    from confluent_kafka.schema_registry import Schema

    from worker.avro import RegistryCodec

    codec = RegistryCodec("mock://decode-resolution")
    without_title = {"type": "record", "name": "VideoUploaded", "namespace": "video.events",
                     "fields": [{"name": "video_id", "type": "string"}]}
    schema_id = codec._client.register_schema("uploads-value", Schema(json.dumps(without_title), "AVRO"))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(without_title), {"video_id": "v1"})
    framed = b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()
    result = Decoder(codec, 512).decode(None, framed, None, SOURCE)
    assert isinstance(result, DeadLetter) and result.error_type == "unknown-schema", result
    assert "title" in result.error_message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.one_of(st.none(), st.binary(max_size=24)))
def test_arbitrary_bytes_never_raise(value: bytes, fingerprint: bytes | None) -> None:
    headers = None if fingerprint is None else [(FINGERPRINT_HEADER, fingerprint)]
    result = decoder.decode(None, value, headers, SOURCE)
    assert isinstance(result, Upload | DeadLetter)
    json.dumps(result.error_type if isinstance(result, DeadLetter) else result.text)
