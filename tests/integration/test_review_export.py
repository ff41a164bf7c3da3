"""Review copies, from the worker to a labeller's file: a hashed sample and the low-confidence rest go to the
review topic with their reason, and `export-review` writes each reason's copies once, as training data lines.

Low confidence is set above 1 so that every upload outside the sample is a low-confidence copy: the two
exports must then split the uploads exactly by `in_sample`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.avro_history import history_schema
from tests.integration.worker_harness import read_outputs, running_worker
from worker.avro import PlainAvroCodec, load_schema, make_codec
from worker.review import LOW_CONFIDENCE, SAMPLE, in_sample
from worker.review_export import export_review
from worker.sample import produce_uploads, sample_uploads
from worker.settings import Settings
from worker.topics import ensure_topics, worker_topics
from worker.training.data import read_videos

pytestmark = pytest.mark.integration
SAMPLE_RATE = 0.3


def produce_copy_from_before_reasons(settings: Settings) -> str:
    """A review copy as the previous worker wrote it (ReviewRequest v1, no `reason`): low confidence."""
    v1 = history_schema("ReviewRequest")
    old = datetime.now(UTC) - timedelta(hours=1)
    record = {"video_id": "before-reasons", "title": "Receita de bolo de cenoura", "tags": ["receita"],
              "description": "", "channel_id": None, "language": "pt", "top_label": "Howto & Style",
              "confidence": 0.2, "categories": [{"label": "Howto & Style", "score": 0.9}],
              "model_version": "head-old", "event_time": old, "processed_time": old}
    value, headers = make_codec(settings).dumps(record, v1, settings.worker_review_topic)
    producer = Producer(settings.kafka_common())
    producer.produce(settings.worker_review_topic, value, b"before-reasons", headers=headers)
    assert producer.flush(30) == 0
    return "before-reasons"


def test_a_record_that_is_no_review_copy_is_passed_over_not_stopped_at(
    make_settings: Callable[..., Settings], unique_name: str, tmp_path: Path
) -> None:
    """E.g. a VideoCategorized copy from before ReviewRequest existed (docs/operations.md upgrade note): a
    record of another of our schemas, or bytes that are no record at all."""
    settings = make_settings(worker_review_topic=f"{unique_name}-review")
    ensure_topics(settings, worker_topics(settings), partitions=1)
    producer = Producer(settings.kafka_common())
    producer.produce(settings.worker_review_topic, b"not a ReviewRequest", b"junk")
    letter = {"source_topic": "t", "source_partition": 0, "source_offset": 0, "error_type": "avro-decode",
              "error_message": "-", "failed_at": 1}
    value, headers = PlainAvroCodec().dumps(letter, load_schema("DeadLetter"), settings.worker_review_topic)
    producer.produce(settings.worker_review_topic, value, b"other-schema", headers=headers)
    assert producer.flush(30) == 0
    old_copy = produce_copy_from_before_reasons(settings)

    export_review(settings, LOW_CONFIDENCE, tmp_path / "low.jsonl")
    assert [line["video_id"] for line in read_lines(tmp_path / "low.jsonl")] == [old_copy]
    assert export_review(settings, LOW_CONFIDENCE, tmp_path / "again.jsonl").as_json()["exported"] == 0


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_reason_is_exported_once_as_lines_a_labeller_completes(
    make_settings: Callable[..., Settings], unique_name: str, tmp_path: Path
) -> None:
    settings = make_settings(worker_review_topic=f"{unique_name}-review", worker_low_confidence=1.01,
                             worker_review_sample_rate=SAMPLE_RATE)
    ensure_topics(settings, worker_topics(settings), partitions=2)
    old_copy = produce_copy_from_before_reasons(settings)
    uploads = sample_uploads(40)
    produce_uploads(settings, uploads)
    with running_worker(settings) as worker:
        outputs = {o["video_id"]: o for o in read_outputs(settings, expected=len(uploads))}
        sent = {s.labels["reason"]: s.value for family in worker.metrics.registry.collect()
                for s in family.samples if s.name == "videocat_events_sent_for_review_total"}
    sampled = {u.video_id for u in uploads if in_sample(u.video_id, SAMPLE_RATE)}
    assert 0 < len(sampled) < len(uploads)
    assert sent == {SAMPLE: len(sampled), LOW_CONFIDENCE: len(uploads) - len(sampled)}

    dry = export_review(settings, SAMPLE, tmp_path / "dry.jsonl", dry_run=True)
    assert dry.as_json()["exported"] == len(sampled) and not (tmp_path / "dry.jsonl").exists()

    samples = export_review(settings, SAMPLE, tmp_path / "sample.jsonl")  # the dry run moved no bookmark
    lines = read_lines(tmp_path / "sample.jsonl")
    assert samples.as_json()["exported"] == len(lines) == len(sampled)
    assert {line["video_id"] for line in lines} == sampled and {line["reason"] for line in lines} == {SAMPLE}
    by_id = {u.video_id: u for u in uploads}
    for line in lines:
        upload, output = by_id[line["video_id"]], outputs[line["video_id"]]
        assert (line["title"], tuple(line["tags"]), line["description"]) == (
            upload.title, upload.tags, upload.description)
        assert line["region"] == line["language"] == output["language"]
        assert line["predicted"]["top_label"] == output["top_label"]
        assert line["predicted"]["model_version"] == output["model_version"]

    unsure = export_review(settings, LOW_CONFIDENCE, tmp_path / "low.jsonl")  # its own bookmark: nothing skipped
    assert {line["video_id"] for line in read_lines(tmp_path / "low.jsonl")} == (
        set(by_id) - sampled | {old_copy})
    assert unsure.as_json()["exported"] == len(uploads) - len(sampled) + 1

    again = export_review(settings, SAMPLE, tmp_path / "again.jsonl")
    assert again.as_json()["exported"] == 0 and not (tmp_path / "again.jsonl").exists()

    # Labelled, the lines are training / evaluation rows grouped by language; unlabelled ones are skipped.
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps({**line, "category": "Music"} if i % 2 else line) + "\n"
                                for i, line in enumerate(lines)), encoding="utf-8")
    rows = read_videos(labelled)
    assert len(rows) == len(lines) // 2
    assert {ex.group for ex in rows} <= {line["language"] for line in lines} and rows[0].labels == ("Music",)

