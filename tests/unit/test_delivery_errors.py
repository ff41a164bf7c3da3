"""What a failed output's KafkaError means (worker/delivery_errors.py): by code first, then by its flags."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from worker.delivery_errors import Verdict, verdict_for

E = KafkaError


@pytest.mark.parametrize(("code", "verdict"), [
    *[(c, Verdict.RETRY) for c in (E._MSG_TIMED_OUT, E._TRANSPORT, E.NOT_ENOUGH_REPLICAS, E.UNKNOWN_TOPIC_OR_PART)],
    *[(c, Verdict.REJECTED) for c in (E.MSG_SIZE_TOO_LARGE, E.RECORD_LIST_TOO_LARGE, E.INVALID_RECORD)],
    *[(c, Verdict.FATAL) for c in (E.TOPIC_AUTHORIZATION_FAILED, E.CLUSTER_AUTHORIZATION_FAILED, E.INVALID_CONFIG)],
])
def test_classify_by_code(code: int, verdict: Verdict) -> None:
    assert verdict_for(KafkaError(code)) is verdict


def test_classify_by_flags() -> None:
    assert verdict_for(KafkaError(E.CONCURRENT_TRANSACTIONS, retriable=True)) is Verdict.RETRY
    assert verdict_for(KafkaError(E._FATAL, fatal=True)) is Verdict.FATAL
    assert verdict_for(KafkaError(E.OUT_OF_ORDER_SEQUENCE_NUMBER, fatal=True)) is Verdict.FATAL
    assert verdict_for(KafkaError(E._TRANSPORT, fatal=True)) is Verdict.FATAL  # the flag wins over a transient code
