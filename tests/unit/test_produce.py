"""The Outbox's handling of failed outputs (worker/produce.py).

Refusals by `produce()` itself (librdkafka's message.max.bytes check) use a real confluent_kafka
Producer: the check is local, so no broker is needed. Failures that only a broker reports (a too-large
or invalid record, a missing ACL) cannot be provoked on the test broker (Tansu takes a 10 MB message and
has no ACLs), so those tests use `FakeProducer`, a stand-in at the Outbox's producer seam that reports
each message's delivery with the error a test scripts.
"""

from __future__ import annotations

import io
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import fastavro
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from structlog.testing import capture_logs

from tests.unit.outbox_doubles import (
    DLQ,
    OUT,
    REVIEW,
    SOURCE,
    FakeProducer,
    categorized,
    event_encoder,
    outbox,
    settings,
)
from worker.avro import PlainAvroCodec, load_schema
from worker.decode import Decoder
from worker.delivery_errors import OutputFailed
from worker.encode import DEAD_LETTER_MAX_BYTES, EventEncoder
from worker.produce import Outbox, Output, producer_config
from worker.records import SourceRef
from worker.settings import DeliveryMode

BIG = 2_000_000  # over librdkafka's default message.max.bytes (1,000,000)
E = KafkaError


def read_letter(value: bytes) -> dict[str, Any]:
    schema = load_schema("DeadLetter").parsed
    return fastavro.schemaless_reader(io.BytesIO(value), schema, schema)


# --- refused by produce() at once (real librdkafka check) ------------------------------------------

class RecordingProducer(Producer):
    """A real producer that remembers what it accepted (its length also counts librdkafka's own requests)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.accepted: list[tuple[str, bytes | None, bytes]] = []

    def produce(self, topic: str, value: bytes, key: bytes | None, **kwargs: Any) -> None:
        super().produce(topic, value, key, **kwargs)
        self.accepted.append((topic, key, value))


@pytest.fixture()
def real_producer() -> Iterator[RecordingProducer]:
    producer = RecordingProducer(producer_config(settings()) | {"log_level": 0})  # quiet: no broker there
    yield producer
    producer.purge()  # nothing can be delivered to 127.0.0.1:1
    producer.flush(0)


def test_an_undecodable_2_mb_input_becomes_a_dead_letter_that_fits(real_producer: RecordingProducer) -> None:
    """The reviewer's reproduction (big_dlq.py): this raised KafkaException(MSG_SIZE_TOO_LARGE) from send."""
    original = os.urandom(BIG)
    letter = Decoder(PlainAvroCodec(), 1024).decode(b"k", original, [], SOURCE)
    value, headers = EventEncoder(PlainAvroCodec(), OUT, DLQ).dead_letter(letter)  # type: ignore[arg-type]
    box = outbox(real_producer, [])
    box.send(Output(DLQ, b"k", value, headers, SOURCE))
    assert [(t, k, v) for t, k, v in real_producer.accepted] == [(DLQ, b"k", value)]
    assert len(value) <= DEAD_LETTER_MAX_BYTES
    record = read_letter(value)
    assert original.startswith(record["original_value"]) and len(record["original_value"]) > 800_000
    assert f"of {BIG} bytes kept" in record["error_message"]


def test_a_categorized_output_too_large_to_produce_dead_letters_its_input(real_producer: RecordingProducer) -> None:
    dead_lettered: list[str] = []
    box = Outbox(settings(), on_acked=[].append, encoder=event_encoder(settings()), producer=real_producer,
                 on_dead_lettered=dead_lettered.append)
    with capture_logs() as logs:
        box.send(categorized(b"x" * BIG))
    assert [topic for topic, _key, _value in real_producer.accepted] == [DLQ]
    assert dead_lettered == ["output-too-large"]
    assert [e["event"] for e in logs] == ["output_dead_lettered"]


def test_a_dead_letter_too_large_even_without_its_key_stops_the_worker_with_a_clear_error(
    real_producer: RecordingProducer,
) -> None:
    box = outbox(real_producer, [])
    with capture_logs() as logs, pytest.raises(OutputFailed, match="MSG_SIZE_TOO_LARGE.*uncommitted"):
        box.send(Output(DLQ, b"k" * BIG, b"v" * BIG, [], SOURCE))
    assert [e["event"] for e in logs] == ["dead_letter_sent_without_key", "output_failed"]


def test_an_oversized_review_copy_is_dropped_with_a_log_line(real_producer: RecordingProducer) -> None:
    box = outbox(real_producer, [])
    with capture_logs() as logs:
        box.send(Output(REVIEW, b"k", b"x" * BIG, [], None))
    assert real_producer.accepted == []
    assert [(e["event"], e["code"]) for e in logs] == [("review_copy_dropped", "MSG_SIZE_TOO_LARGE")]


# --- reported by the broker (delivery reports) -------------------------------------------------------

def test_a_transient_failure_is_sent_again_with_one_log_line_per_interval() -> None:
    producer = FakeProducer({OUT: [KafkaError(KafkaError._MSG_TIMED_OUT)] * 3})
    acked: list[SourceRef] = []
    box = outbox(producer, acked)
    box.send(categorized())
    with capture_logs() as logs:
        assert box.flush(5) == 0
    assert producer.topics() == [OUT] * 4 and acked == [SOURCE]
    assert [e["event"] for e in logs] == ["delivery_failed_resending"]


@pytest.mark.parametrize(("code", "reason"), [(E.MSG_SIZE_TOO_LARGE, "output-too-large"),
                                              (E.INVALID_RECORD, "output-rejected")])
def test_a_categorized_output_the_broker_refuses_dead_letters_its_input(code: int, reason: str) -> None:
    producer = FakeProducer({OUT: [KafkaError(code)]})
    acked: list[SourceRef] = []
    box = outbox(producer, acked)
    box.send(categorized(b"x" * 5000))
    assert box.flush(5) == 0
    assert producer.topics() == [OUT, DLQ] and acked == [SOURCE]
    topic, key, value = producer.produced[1]
    letter = read_letter(value)
    assert (key, letter["original_key"], letter["original_value"]) == (b"video-1", b"video-1", None)
    assert letter["error_type"] == reason
    assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == ("in", 0, 7)
    assert KafkaError(code).name() in letter["error_message"] and "5000 bytes" in letter["error_message"]


def test_a_topic_wide_failure_stops_the_worker_once_without_acknowledging_the_input() -> None:
    producer = FakeProducer({OUT: [KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)]})
    acked: list[SourceRef] = []
    box = outbox(producer, acked)
    box.send(categorized())
    with pytest.raises(OutputFailed, match="TOPIC_AUTHORIZATION_FAILED"):
        box.poll()
    box.poll()  # raised once: the worker's drain can still flush and commit what was acknowledged
    assert producer.topics() == [OUT] and acked == []
    assert box.failed  # the loop's drain sends nothing more


@pytest.mark.parametrize("code", [KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.TOPIC_AUTHORIZATION_FAILED])
def test_a_dead_letter_that_cannot_be_written_stops_the_worker(code: int) -> None:
    producer = FakeProducer({DLQ: [KafkaError(code)] * 2})
    acked: list[SourceRef] = []
    box = outbox(producer, acked)
    box.send(Output(DLQ, None, b"letter", [], SOURCE))
    with pytest.raises(OutputFailed, match="dead letter"):
        box.flush(5)
    assert acked == []


def test_a_dead_letter_the_broker_refuses_as_too_large_is_sent_again_without_its_key() -> None:
    producer = FakeProducer({DLQ: [KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)]})
    acked: list[SourceRef] = []
    box = outbox(producer, acked)
    box.send(Output(DLQ, b"k" * 100_000, b"letter", [], SOURCE))
    assert box.flush(5) == 0
    assert [(t, k is None) for t, k, _v in producer.produced] == [(DLQ, False), (DLQ, True)] and acked == [SOURCE]


def test_a_dead_letter_that_failed_transiently_is_sent_again() -> None:
    producer = FakeProducer({DLQ: [KafkaError(KafkaError._MSG_TIMED_OUT)]})
    acked: list[SourceRef] = []
    box = outbox(producer, acked)
    box.send(Output(DLQ, None, b"letter", [], SOURCE))
    assert box.flush(5) == 0 and producer.topics() == [DLQ, DLQ] and acked == [SOURCE]


def test_review_copy_failures_are_logged_and_counted_not_resent() -> None:
    producer = FakeProducer({REVIEW: [KafkaError(KafkaError._MSG_TIMED_OUT), KafkaError(KafkaError.INVALID_RECORD)]})
    dropped: list[str] = []
    box = outbox(producer, [])
    box._on_review_dropped = dropped.append
    with capture_logs() as logs:
        box.send(Output(REVIEW, b"a", b"copy", [], None))
        box.send(Output(REVIEW, b"b", b"copy", [], None))
        assert box.flush(5) == 0
    assert producer.topics() == [REVIEW, REVIEW]
    assert [(e["event"], e["code"]) for e in logs] == [("review_copy_dropped", "_MSG_TIMED_OUT"),
                                                      ("review_copy_dropped", "INVALID_RECORD")]
    assert dropped == ["_MSG_TIMED_OUT", "INVALID_RECORD"]  # videocat_review_copies_dropped_total{code}


def test_a_fatal_producer_error_on_a_review_copy_stops_the_worker() -> None:
    producer = FakeProducer({REVIEW: [KafkaError(KafkaError._FATAL, fatal=True)]})
    box = outbox(producer, [])
    box.send(Output(REVIEW, b"a", b"copy", [], None))
    with pytest.raises(OutputFailed):
        box.flush(5)


# --- exactly-once -------------------------------------------------------------------------------------

def test_exactly_once_leaves_acknowledging_to_the_loop() -> None:
    """The loop counts a sent output as done; a second count from the delivery report kept one offset per
    message in the tracker's `done` set for good."""
    acked: list[SourceRef] = []
    box = outbox(FakeProducer(), acked, worker_delivery=DeliveryMode.EXACTLY_ONCE)
    box.send(categorized())
    assert box.flush(5) == 0 and acked == []


def test_exactly_once_aborts_the_transaction_before_stopping() -> None:
    producer = FakeProducer(refuse={OUT: KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)})
    box = outbox(producer, [], worker_delivery=DeliveryMode.EXACTLY_ONCE)
    with pytest.raises(OutputFailed):
        box.send(categorized())
    assert producer.aborted == 1


def test_a_transaction_that_fails_to_commit_is_aborted_and_nothing_more_is_sent() -> None:
    """The worker ends with the commit's error. Its drain on the way out used to send the next batch's
    outputs into the aborted transaction, and the worker then ended with that second error instead."""
    producer = FakeProducer()
    producer.commit_errors = [KafkaError(KafkaError._TIMED_OUT, txn_requires_abort=True)]
    box = outbox(producer, [], worker_delivery=DeliveryMode.EXACTLY_ONCE)
    box.send(categorized())
    with pytest.raises(KafkaException):
        box.commit_with_offsets({("in", 0): 8}, None)
    assert producer.aborted == 1 and box.failed


def test_exactly_once_dead_letters_an_output_refused_at_once_inside_the_transaction() -> None:
    producer = FakeProducer(refuse={OUT: KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)})
    acked: list[SourceRef] = []
    box = outbox(producer, acked, worker_delivery=DeliveryMode.EXACTLY_ONCE)
    box.send(categorized(b"x" * BIG))
    assert box.flush(5) == 0 and producer.topics() == [DLQ] and producer.aborted == 0 and acked == []


def test_exactly_once_start_up_waits_out_a_broker_that_does_not_answer() -> None:
    """A timed-out init_transactions is tried again (librdkafka resumes it) and heard as waiting; before,
    one 30 s timeout at start-up made the worker exit."""
    producer, waits = FakeProducer(), []
    producer.init_errors = [KafkaError(KafkaError._TIMED_OUT, retriable=True)] * 2
    box = outbox(producer, [], worker_delivery=DeliveryMode.EXACTLY_ONCE)
    box.init_transactions(threading.Event(), on_waiting=lambda: waits.append(1))
    assert (producer.init_calls, len(waits)) == (3, 2)


def test_exactly_once_start_up_stops_waiting_when_asked_and_on_a_fatal_error() -> None:
    producer, stop = FakeProducer(), threading.Event()
    producer.init_errors = [KafkaError(KafkaError._TIMED_OUT, retriable=True)] * 5
    box = outbox(producer, [], worker_delivery=DeliveryMode.EXACTLY_ONCE)
    box.init_transactions(stop, on_waiting=stop.set)
    assert producer.init_calls == 1
    producer.init_errors = [KafkaError(KafkaError._TIMED_OUT, retriable=True, fatal=True)]  # fatal wins
    with pytest.raises(KafkaException):
        box.init_transactions(threading.Event(), on_waiting=stop.set)


def test_exactly_once_takes_its_transaction_timeout_from_the_settings() -> None:
    conf = producer_config(settings(worker_delivery="exactly-once", kafka_transaction_timeout_ms=15_000,
                                    worker_transactional_id="pod-0"))
    assert (conf["transactional.id"], conf["transaction.timeout.ms"]) == ("pod-0", 15_000)
    assert "transaction.timeout.ms" not in producer_config(settings())


def test_exactly_once_without_a_transactional_id_takes_one_per_host() -> None:
    """Not one id for the whole group: each replica's init_transactions would fence the others in turn."""
    conf = producer_config(settings(worker_delivery="exactly-once", worker_group_id="g"))
    assert conf["transactional.id"] == f"g-{socket.gethostname()}"


def test_flush_waits_between_re_sends_of_an_output_refused_at_once() -> None:
    """produce() refusing at once with a transient code (a topic missing with auto-create off) must not spin
    the CPU for flush's whole timeout, on every revoke and at shutdown."""
    producer, acked = FakeProducer(refuse={OUT: KafkaError(KafkaError._UNKNOWN_TOPIC)}), []
    box = outbox(producer, acked)
    box.send(categorized())
    calls = []
    real_produce = producer.produce
    producer.produce = lambda *args, **kwargs: (calls.append(1), real_produce(*args, **kwargs))  # type: ignore[method-assign]
    assert box.flush(timeout_s=1.2) == 1 and acked == []
    assert len(calls) <= 4  # about one re-send per 0.5 s pause (it was ~300,000 a second)
