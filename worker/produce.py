"""Produce: send outputs and report each acknowledgment back to the loop.

`Outbox` wraps one idempotent confluent_kafka.Producer (acks=all). Every output names the
input it answers (`SourceRef`); its delivery callback calls `on_acked(source)`, which is
what lets the loop commit that input's offset. An input is never committed without its output
or, when the output can never be written, a dead letter saying why.

A failed output (refused by `produce()` at once, or by a delivery report after librdkafka's own
retries) is handled by what it is and by `classify`:
- `RETRY` (timed out, brokers down, ...): sent again; a review copy is dropped (no offset waits on it).
- `REJECTED` (this message: too large, invalid record): a categorized output's input is dead-lettered
  (`output-too-large`, `output-rejected`); a too-large dead letter is sent again without its message key
  (the letter itself is cut to fit, `encode.fit_dead_letter`); a review copy is dropped.
- `FATAL` (authorization, a fatal producer error, any other code): `OutputFailed`, except for a review
  copy, which is dropped unless the producer itself failed.
`OutputFailed` stops the worker with the input uncommitted (read again after the restart): a
topic-wide fault such as a missing ACL would otherwise send the whole stream to the dead-letter
topic, or stall commits silently. A dead letter cannot itself be dead-lettered. Failures that repeat
(re-sends, dropped review copies, deliveries failed in a transaction) are logged at most once per
`LOG_INTERVAL_S` per event and error code, with the count held back; each dead-lettered input is logged.

In exactly-once mode the producer is transactional: the loop wraps each step's outputs in a
transaction together with the consumer offsets (`begin` / `commit_with_offsets`), and counts an
output as done once sent. A delivery that fails there fails the transaction's commit (the worker
exits and resumes from the last committed transaction); an output refused at once is handled as
above inside the open transaction, except that `RETRY` raises too, and `OutputFailed` aborts the
transaction first.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from worker.avro import Headers
from worker.delivery_errors import TOO_LARGE, OutputFailed, Verdict, verdict_for
from worker.encode import EventEncoder, kept_key
from worker.logs import LogLimiter
from worker.records import DeadLetter, SourceRef
from worker.retry import until_done
from worker.settings import DeliveryMode, Settings

log = structlog.get_logger(__name__)
LOG_INTERVAL_S = 30.0
TXN_INIT_TRY_S = 5.0  # one try of init_transactions (the next resumes it)
RETRY_PAUSE_S = 0.5  # between re-sends in `flush` of outputs that produce() refused at once


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
        # Java's default: a video id lands on the partition a Java or Kafka Streams client would put it
        # (librdkafka's own default, CRC32, differs), so consumers can join our topics with theirs by key.
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 200_000,
    }


def transactional_id(settings: Settings) -> str:
    """The setting, else `<group>-<host name>` (in Kubernetes the pod name, as the chart sets it): one id
    shared by every replica would have each one's `init_transactions` fence the others in turn."""
    return settings.worker_transactional_id or f"{settings.worker_group_id}-{socket.gethostname()}"


def producer_config(settings: Settings) -> dict[str, Any]:
    conf = idempotent_producer_config(settings)
    if settings.worker_delivery is DeliveryMode.EXACTLY_ONCE:
        conf["transactional.id"] = transactional_id(settings)
        conf["transaction.timeout.ms"] = settings.kafka_transaction_timeout_ms
    return conf


class Outbox:
    """`encoder` writes the dead letters of refused outputs; `producer` defaults to the worker's own (tests
    pass stand-ins); `on_dead_lettered` hears the reason of each input this outbox dead-letters because its
    output was refused, `on_review_dropped` the error code of each review copy the broker refused."""

    def __init__(self, settings: Settings, on_acked: Callable[[SourceRef], None], *, encoder: EventEncoder,
                 producer: Producer | None = None, on_dead_lettered: Callable[[str], None] | None = None,
                 on_review_dropped: Callable[[str], None] | None = None) -> None:
        self._producer = producer if producer is not None else Producer(producer_config(settings))
        self._settings = settings
        self._on_acked = on_acked
        self._encoder = encoder
        self._on_dead_lettered = on_dead_lettered
        self._on_review_dropped = on_review_dropped
        self._retry: list[Output] = []
        self._failed: deque[tuple[Output, KafkaError]] = deque()  # delivery failures, handled in `poll`
        self._log = LogLimiter(LOG_INTERVAL_S)
        self.failed = False  # an OutputFailed was raised: nothing more should be sent
        self.transactional = settings.worker_delivery is DeliveryMode.EXACTLY_ONCE

    def send(self, output: Output) -> None:
        """Queue `output`; one refused at once is handled here (see the module doc), maybe by raising OutputFailed."""
        try:
            self._produce(output)
        except KafkaException as error:
            self._handle_failure(output, error.args[0])

    def _produce(self, output: Output) -> None:
        while True:
            try:
                self._producer.produce(output.topic, output.value, output.key, headers=output.headers,
                                       on_delivery=functools.partial(self._delivered, output))
                return
            except BufferError:  # local queue full: serve callbacks until there is room
                self._producer.poll(0.1)

    def _delivered(self, output: Output, error: KafkaError | None, _message: Message) -> None:
        if error is None:
            if output.source is not None and not self.transactional:  # the loop counted it done when sent
                self._on_acked(output.source)
        elif self.transactional:
            self._warn("delivery_failed_in_transaction", output, error)  # the transaction's commit fails
        else:
            self._failed.append((output, error))

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve delivery callbacks, then handle failed deliveries; may raise OutputFailed."""
        self._producer.poll(timeout_s)
        while self._failed:
            self._handle_failure(*self._failed.popleft())
        if self._retry:
            retry, self._retry = self._retry, []
            for output in retry:
                self.send(output)

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for every acknowledgment (re-sending failures); returns what is still queued."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._producer.flush(max(0.0, min(1.0, deadline - time.monotonic())))
            if self._retry and len(self._producer) == 0:  # refused by produce() at once: wait, do not spin
                time.sleep(max(0.0, min(RETRY_PAUSE_S, deadline - time.monotonic())))
            self.poll()  # may send again (failures, dead letters): done only when the producer is empty after it
            if len(self._producer) == 0 and not self._retry and not self._failed:
                return 0
        return len(self._producer) + len(self._retry) + len(self._failed)

    def close(self) -> None:
        """Release the producer's broker connections; the worker's drain has flushed what was queued."""
        self._producer.close()

    # --- failures ------------------------------------------------------------------------------
    def _handle_failure(self, output: Output, error: KafkaError) -> None:
        verdict = verdict_for(error)
        source, is_dead_letter = output.source, output.topic == self._settings.worker_dlq_topic
        if source is None:
            self._review_copy_failed(output, error)
        elif verdict is Verdict.RETRY and not self.transactional:
            self._warn("delivery_failed_resending", output, error)
            self._retry.append(output)
        elif verdict is Verdict.REJECTED and not is_dead_letter:
            self._dead_letter_refused(output, source, error)
        elif verdict is Verdict.REJECTED and error.code() in TOO_LARGE and output.key is not None:
            log.warning("dead_letter_sent_without_key", source=output.source, key_bytes=len(output.key))
            self.send(dataclasses.replace(output, key=None))  # the letter is cut to fit; its message key is not
        else:
            raise self._failed_for_good(output, error)

    def _review_copy_failed(self, output: Output, error: KafkaError) -> None:
        """A review copy is a side output no offset waits on: dropped, unless the producer itself failed."""
        if error.fatal() or error.code() == KafkaError._FATAL:
            raise self._failed_for_good(output, error)
        self._warn("review_copy_dropped", output, error)
        if self._on_review_dropped is not None:
            self._on_review_dropped(error.name())

    def _dead_letter_refused(self, output: Output, source: SourceRef, error: KafkaError) -> None:
        """Dead-letter the input of a categorized output that can never be written.

        The letter carries no original value: the input was valid and is still at its source
        coordinates; its reason is not a decoder reason, so `replay-dead-letters` never sends it back.
        """
        reason = "output-too-large" if error.code() in TOO_LARGE else "output-rejected"
        message = (f"the {output.topic} output for this input was refused ({error.name()}: {error.str()}): key "
                   f"{len(output.key or b'')} bytes, value {len(output.value)} bytes; the input is not carried "
                   "here, it is at source_topic/source_partition/source_offset")
        value, headers = self._encoder.dead_letter(DeadLetter(source, output.key, None, reason, message))
        log.error("output_dead_lettered", topic=output.topic, reason=reason, code=error.name(),
                  source=source, value_bytes=len(output.value))
        self.send(Output(self._settings.worker_dlq_topic, kept_key(output.key), value, headers, source))
        if self._on_dead_lettered is not None:
            self._on_dead_lettered(reason)

    def _failed_for_good(self, output: Output, error: KafkaError) -> OutputFailed:
        what = "dead letter" if output.topic == self._settings.worker_dlq_topic else "output"
        self.failed = True
        log.error("output_failed", topic=output.topic, what=what, code=error.name(), reason=error.str(),
                  source=output.source, fatal=error.fatal())
        if self.transactional:  # its input's offset is in the open transaction: commit none of it
            self._abort()
        return OutputFailed(
            f"a {what} to {output.topic} for input {output.source} cannot be written: {error.name()}: {error.str()}. "
            "The worker stops with that input uncommitted; it is read again after a restart once the cause "
            "(ACLs, topic settings such as max.message.bytes, broker health) is mended.")

    def _abort(self) -> None:
        try:
            self._producer.abort_transaction(30)
        except KafkaException as error:
            log.error("abort_failed", reason=str(error))

    def _warn(self, event: str, output: Output, error: KafkaError) -> None:
        held = self._log.allow(f"{event}:{error.name()}")
        if held is not None:
            log.warning(event, topic=output.topic, code=error.name(), reason=error.str(), held_back=held)

    # --- exactly-once ----------------------------------------------------------------------
    def init_transactions(self, stop: threading.Event, on_waiting: Callable[[], None]) -> None:
        """Register the transactional id (fencing an earlier holder), tried until done or `stop` is set:
        a broker away at start-up is waited out, as the consumer waits for it, instead of exiting.
        librdkafka resumes the same initialization on each try; `on_waiting` hears each timed-out one."""
        until_done(self._try_init_transactions, stop, 0.0, on_waiting, "transactions_not_initialized")

    def _try_init_transactions(self) -> str | None:
        try:
            self._producer.init_transactions(TXN_INIT_TRY_S)
        except KafkaException as error:
            if not error.args[0].retriable() or error.args[0].fatal():
                raise
            return f"the broker did not answer: {error.args[0].str()}"
        return None

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
            self.failed = True  # the worker ends with this error: its drain must not send into a dead transaction
            if error.args[0].txn_requires_abort():
                self._producer.abort_transaction(30)
            raise
