"""A stand-in for the Outbox's producer, and the settings and outputs the Outbox tests build.

Failures that only a broker reports (a too-large or invalid record, a missing ACL) cannot be provoked on
the test broker (Tansu takes a 10 MB message and has no ACLs): `FakeProducer` reports each message's
delivery with the error a test scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from worker.avro import PlainAvroCodec
from worker.encode import EventEncoder
from worker.produce import Outbox, Output
from worker.records import SourceRef
from worker.settings import Settings

OUT, DLQ, REVIEW = "out", "dlq", "review"
SOURCE = SourceRef("in", 0, 7)


class FakeProducer:
    """The Producer calls the Outbox makes. `produce` raises what `refuse` scripts for the topic; each
    message produced is reported on the next poll/flush with the next error scripted for its topic in
    `errors` (nothing left: acknowledged)."""

    def __init__(self, errors: dict[str, list[KafkaError]] | None = None,
                 refuse: dict[str, KafkaError] | None = None) -> None:
        self.errors = errors or {}
        self.refuse = refuse or {}
        self.produced: list[tuple[str, bytes | None, bytes]] = []
        self.aborted = 0
        self.init_errors: list[KafkaError] = []  # what init_transactions raises, one per call, then succeeds
        self.init_calls = 0
        self.commit_errors: list[KafkaError] = []  # what commit_transaction raises, one per call
        self._pending: list[tuple[str, Callable[[KafkaError | None, Any], None]]] = []

    def produce(self, topic: str, value: bytes, key: bytes | None, headers: Any, on_delivery: Any) -> None:
        if topic in self.refuse:
            raise KafkaException(self.refuse[topic])
        self.produced.append((topic, key, value))
        self._pending.append((topic, on_delivery))

    def poll(self, _timeout: float = 0.0) -> int:
        pending, self._pending = self._pending, []
        for topic, on_delivery in pending:
            scripted = self.errors.get(topic)
            on_delivery(scripted.pop(0) if scripted else None, None)
        return len(pending)

    def flush(self, _timeout: float = 0.0) -> int:
        self.poll()
        return 0

    def __len__(self) -> int:
        return len(self._pending)

    def init_transactions(self, _timeout: float) -> None:
        self.init_calls += 1
        if self.init_errors:
            raise KafkaException(self.init_errors.pop(0))

    def send_offsets_to_transaction(self, _offsets: Any, _group_metadata: Any, _timeout: float) -> None:
        pass

    def commit_transaction(self, _timeout: float) -> None:
        if self.commit_errors:
            raise KafkaException(self.commit_errors.pop(0))

    def abort_transaction(self, _timeout: float) -> None:
        self.aborted += 1

    def topics(self) -> list[str]:
        return [topic for topic, _key, _value in self.produced]


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"kafka_bootstrap_servers": "127.0.0.1:1", "worker_output_topic": OUT,
                              "worker_dlq_topic": DLQ, "worker_review_topic": REVIEW}
    return Settings(**(values | overrides))


def event_encoder(s: Settings) -> EventEncoder:
    return EventEncoder(PlainAvroCodec(), s.worker_output_topic, s.worker_dlq_topic, s.worker_review_topic)


def outbox(producer: Any, acked: list[SourceRef], **overrides: Any) -> Outbox:
    s = settings(**overrides)
    return Outbox(s, on_acked=acked.append, encoder=event_encoder(s), producer=producer)


def categorized(value: bytes = b"v", key: bytes | None = b"video-1") -> Output:
    return Output(OUT, key, value, [], SOURCE)
