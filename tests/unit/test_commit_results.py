"""What `consume.Inbox` reports as committed: only what the broker confirmed.

librdkafka reports an asynchronous commit's result to the consumer's `on_commit` callback only (the call
itself returns None), so that callback is what confirms a position (`OffsetTracker.mark_committed`). A
commit that fails at the broker is provoked with a real broker in
tests/integration/test_commit_failures.py; librdkafka's per-partition errors cannot be built here, so these
cover the request-level results and the synchronous path against an unreachable broker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, TopicPartition

from worker.consume import Inbox
from worker.settings import Settings

Positions = dict[tuple[str, int], int]


@pytest.fixture()
def confirmed() -> list[Positions]:
    return []


@pytest.fixture()
def failures() -> list[None]:
    return []


@pytest.fixture()
def inbox(confirmed: list[Positions], failures: list[None]) -> Iterator[Inbox]:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", worker_group_id="commit-results")  # nothing listens
    inbox = Inbox(settings, on_assign=lambda _p: None, on_revoke=lambda _p: None, on_committed=confirmed.append,
                  on_commit_failed=lambda: failures.append(None))
    yield inbox
    inbox._consumer.close()


def test_a_commit_callback_without_error_confirms_its_positions(inbox: Inbox, confirmed: list[Positions]) -> None:
    inbox._committed(None, [TopicPartition("t", 0, 5), TopicPartition("t", 1, 9)])
    assert confirmed == [{("t", 0): 5, ("t", 1): 9}]


def test_a_failed_commit_confirms_nothing_and_is_counted(
    inbox: Inbox, confirmed: list[Positions], failures: list[None],
) -> None:
    inbox._committed(None, [TopicPartition("t", 0, 4)])
    assert failures == []
    inbox._committed(KafkaError(KafkaError._TRANSPORT), [TopicPartition("t", 0, 5)])
    inbox._committed(KafkaError(KafkaError.REBALANCE_IN_PROGRESS), [TopicPartition("t", 0, 5)])
    assert confirmed == [{("t", 0): 4}] and len(failures) == 2  # videocat_commit_failures_total


@pytest.mark.slow
def test_a_synchronous_commit_that_fails_confirms_nothing(inbox: Inbox, confirmed: list[Positions]) -> None:
    inbox.commit({("t", 0): 5}, asynchronous=False)  # no coordinator: fails after ~10 s, does not raise
    assert confirmed == []
