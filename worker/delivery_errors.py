"""Delivery errors: what a failed output's `KafkaError` means for the message and for the worker.

`RETRY`: transient, the same message may be written later. `REJECTED`: this message can never be
written (too large, an invalid record). `FATAL`: the producer, the topic or the credentials are wrong,
so no message can be written; the worker stops with `OutputFailed` (worker.produce says what each
verdict does).
"""

from __future__ import annotations

from enum import StrEnum

from confluent_kafka import KafkaError


class Verdict(StrEnum):
    RETRY = "retry"  # transient: the same message may be written later
    REJECTED = "rejected"  # this message can never be written
    FATAL = "fatal"  # the producer, the topic or the credentials are wrong: no message can be written


TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})
REJECTED_CODES = TOO_LARGE | {KafkaError.INVALID_RECORD}
TRANSIENT_CODES = frozenset({
    KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TIMED_OUT_QUEUE, KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN, KafkaError._QUEUE_FULL, KafkaError._RETRY, KafkaError._PURGE_QUEUE,
    KafkaError._PURGE_INFLIGHT, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION,
    KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.BROKER_NOT_AVAILABLE, KafkaError.REPLICA_NOT_AVAILABLE, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION, KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    KafkaError.KAFKA_STORAGE_ERROR, KafkaError.INVALID_MSG, KafkaError.THROTTLING_QUOTA_EXCEEDED,
    KafkaError.FENCED_LEADER_EPOCH, KafkaError.UNKNOWN_LEADER_EPOCH,
})


def verdict_for(error: KafkaError) -> Verdict:
    """What a failed output's error means. Codes decide: confluent-kafka never sets `retriable()` on
    delivery-report errors, and librdkafka reports most transient faults as `_MSG_TIMED_OUT`."""
    code = error.code()
    if error.fatal() or code == KafkaError._FATAL:
        return Verdict.FATAL
    if code in REJECTED_CODES:
        return Verdict.REJECTED
    if error.retriable() or code in TRANSIENT_CODES:
        return Verdict.RETRY
    return Verdict.FATAL


class OutputFailed(RuntimeError):
    """An output that can be neither written nor dead-lettered: the worker stops, its input uncommitted."""
