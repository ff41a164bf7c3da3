"""Produce: send outputs and report each acknowledgment back to the loop.

`Outbox` wraps one idempotent confluent_kafka.Producer (acks=all). Every output names the
input it answers (`SourceRef`); its delivery callback calls `on_acked(source)`, which is
what lets the loop commit that input's offset. A delivery that fails after librdkafka's own
retries is sent again, so an input is never committed without its output.

In exactly-once mode the producer is transactional: the loop wraps each batch in a
transaction together with the consumer offsets (`begin` / `commit_with_offsets`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from worker.avro import Headers
from worker.records import SourceRef
from worker.settings import DeliveryMode, Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    source: SourceRef | None  # None for side outputs (review copies) that no offset waits on


def idempotent_producer_config(settings: Settings) -> dict[str, Any]:
    """An idempotent producer (acks=all) that is never transactional: for tools beside the worker."""
    return {
        **settings.kafka_common(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 200_000,
    }


def producer_config(settings: Settings) -> dict[str, Any]:
    conf = idempotent_producer_config(settings)
    if settings.worker_delivery is DeliveryMode.EXACTLY_ONCE:
        conf["transactional.id"] = settings.worker_transactional_id or f"{settings.worker_group_id}-worker"
        conf["transaction.timeout.ms"] = 60_000
    return conf


class Outbox:
    def __init__(self, settings: Settings, on_acked: Callable[[SourceRef], None]) -> None:
        self._producer = Producer(producer_config(settings))
        self._on_acked = on_acked
        self._retry: list[Output] = []
        self.transactional = settings.worker_delivery is DeliveryMode.EXACTLY_ONCE
        if self.transactional:
            self._producer.init_transactions(30)

    def send(self, output: Output) -> None:
        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                if output.source is not None:
                    self._on_acked(output.source)
            elif output.source is not None and not self.transactional:
                log.warning("delivery_failed_resending", topic=output.topic, reason=error.str())
                self._retry.append(output)

        while True:
            try:
                self._producer.produce(output.topic, output.value, output.key, headers=output.headers,
                                       on_delivery=delivered)
                return
            except BufferError:  # local queue full: serve callbacks until there is room
                self._producer.poll(0.1)

    def poll(self, timeout_s: float = 0.0) -> None:
        self._producer.poll(timeout_s)
        if self._retry:
            retry, self._retry = self._retry, []
            for output in retry:
                self.send(output)

    def queued(self) -> int:
        return len(self._producer)

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for every acknowledgment (re-sending failures); returns what is still queued."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            remaining = self._producer.flush(max(0.0, min(1.0, deadline - time.monotonic())))
            self.poll()
            if remaining == 0 and not self._retry:
                return 0
        return len(self._producer) + len(self._retry)

    def close(self) -> None:
        """Release the producer's broker connections; the worker's drain has flushed what was queued."""
        self._producer.close()

    # --- exactly-once ----------------------------------------------------------------------
    def begin(self) -> None:
        self._producer.begin_transaction()

    def commit_with_offsets(self, positions: dict[tuple[str, int], int], group_metadata: Any) -> None:
        """Commit the transaction's outputs and the consumer offsets atomically."""
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        try:
            if offsets:
                self._producer.send_offsets_to_transaction(offsets, group_metadata, 30)
            self._producer.commit_transaction(60)
        except KafkaException as error:
            if error.args[0].txn_requires_abort():
                self._producer.abort_transaction(30)
            raise
