"""Outputs that carry an input's bytes or text are bounded (worker/encode.py): no input can make a dead
letter or a review copy too large to produce."""

from __future__ import annotations

import io
from typing import Any

import fastavro
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.avro import PlainAvroCodec, load_schema
from worker.encode import (
    DEAD_LETTER_MAX_BYTES,
    KEPT_KEY_BYTES,
    REVIEW_TEXT_MAX_CHARS,
    EventEncoder,
    dead_letter_record,
    fit_dead_letter,
    review_request_record,
)
from worker.records import Categorized, CategoryScore, DeadLetter, SourceRef, VideoUploaded

SOURCE = SourceRef("video-uploaded", 3, 41)
ENCODER = EventEncoder(PlainAvroCodec(), "out", "dlq", "review")
MB = 1024 * 1024


def read(value: bytes, name: str) -> dict[str, Any]:
    schema = load_schema(name).parsed
    return fastavro.schemaless_reader(io.BytesIO(value), schema, schema)


def letter(key: bytes | None = b"k", value: bytes | None = b"v", headers: tuple[tuple[str, bytes | None], ...] = (),
           message: str = "ValueError: bad") -> DeadLetter:
    return DeadLetter(SOURCE, key, value, "avro-decode", message, headers)


def test_a_small_letter_is_kept_whole() -> None:
    small = letter(headers=(("avro.schema.fingerprint", b"abc"),))
    assert fit_dead_letter(small) == small
    record = read(ENCODER.dead_letter(small)[0], "DeadLetter")
    assert (record["original_value"], record["error_message"]) == (b"v", "ValueError: bad")
    assert not record["original_cut"]


def test_a_2_mb_value_keeps_its_first_bytes_and_says_how_big_it_was() -> None:
    original = bytes(range(256)) * (2 * MB // 256)
    value, _headers = ENCODER.dead_letter(letter(value=original))
    record = read(value, "DeadLetter")
    assert len(value) <= DEAD_LETTER_MAX_BYTES
    kept = record["original_value"]
    assert original.startswith(kept) and len(kept) > DEAD_LETTER_MAX_BYTES - 4096
    assert record["error_message"] == (f"ValueError: bad [cut to fit the dead-letter topic: original_value "
                                       f"{len(kept)} of {len(original)} bytes kept]")
    assert (record["error_type"], record["source_offset"], record["original_key"]) == ("avro-decode", 41, b"k")
    assert record["original_cut"]  # replay passes it over


def test_a_huge_key_and_headers_are_cut_too() -> None:
    headers = tuple((f"h{i}", b"x" * 1000) for i in range(500))
    fitted = fit_dead_letter(letter(key=b"k" * (2 * MB), value=b"v" * (2 * MB), headers=headers, message="m" * 9000))
    value, _headers = ENCODER.dead_letter(fitted)
    assert len(value) <= DEAD_LETTER_MAX_BYTES
    assert fitted.key == b"k" * KEPT_KEY_BYTES and fitted.headers == headers[: len(fitted.headers)]
    assert 0 < len(fitted.headers) < len(headers)
    assert f"original_key {KEPT_KEY_BYTES} of {2 * MB} bytes kept" in fitted.error_message
    assert f"original_headers {len(fitted.headers)} of 500 kept" in fitted.error_message and fitted.original_cut


@settings(max_examples=50, deadline=None)
@given(key=st.one_of(st.none(), st.binary(max_size=3000)), value=st.one_of(st.none(), st.binary(max_size=30_000)),
       headers=st.lists(st.tuples(st.text(max_size=20), st.one_of(st.none(), st.binary(max_size=500))), max_size=20),
       message=st.text(max_size=3000), limit=st.integers(min_value=12_000, max_value=40_000))
def test_a_fitted_letter_always_encodes_within_the_limit(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes | None]], message: str, limit: int,
) -> None:
    original = letter(key, value, tuple(headers), message)
    record = dead_letter_record(original, limit)
    assert len(PlainAvroCodec().dumps(record, load_schema("DeadLetter"), "dlq")[0]) <= limit
    kept = record["original_value"]
    assert kept == (original.value[: len(kept)] if original.value is not None else None)


# --- review copies ---------------------------------------------------------------------------------

def result(video_id: str) -> Categorized:
    return Categorized(video_id, (CategoryScore("Music", 0.3),), "Music", 0.3, 0.2, "es", "v1",
                       f"vc:emb:ns:video:{video_id}", True, 1, 2, SOURCE)


def test_a_review_copy_cuts_huge_text_fields() -> None:
    upload = VideoUploaded("v1", "título " * 100_000, "palabra " * (3 * MB // 8), ("etiqueta",) * 100_000)
    value, _headers = ENCODER.review_request(upload, result("v1"), "low-confidence")
    record = read(value, "ReviewRequest")
    assert len(value) < 100_000
    assert upload.description.startswith(record["description"])
    assert len(record["description"]) > REVIEW_TEXT_MAX_CHARS * 4 // 5
    assert upload.title.startswith(record["title"]) and len(record["title"]) <= REVIEW_TEXT_MAX_CHARS
    assert sum(len(tag) for tag in record["tags"]) <= REVIEW_TEXT_MAX_CHARS and record["tags"][0] == "etiqueta"


def test_a_review_copy_of_an_ordinary_upload_is_whole() -> None:
    upload = VideoUploaded("v2", "Guitar lesson", "Learn three chords today.", ("music", "guitar"), channel_id="c")
    record = review_request_record(upload, result("v2"), "sample")
    assert (record["title"], record["description"], record["tags"], record["channel_id"]) == (
        "Guitar lesson", "Learn three chords today.", ["music", "guitar"], "c")
