"""A message of a partition revoked after it was fetched is not processed: its partition's new owner reads it.

`consume.fetch` takes one message from `poll()`, then the rest from `consume()`, and `consume()` serves
rebalance callbacks: the worker's revoke (drain, commit, forget) can run between the two, and the message
already taken then belongs to a partition the worker no longer holds. Processing it anyway wrote an output
for another member's partition, tracked and committed an offset there, and, once the partition came back,
processed the message a second time.

Real worker, Redis, model and Tansu; the rebalance is real too (a second member joins the group). Only its
timing is arranged: the worker's consumer is wrapped so that the first message `poll()` returns is handed
over once that member's join has made the worker's revoke pending, so the `consume()` right after serves it.
The newcomer's client id sorts before the worker's (`rdkafka`), so the range assignor gives it the partition.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Consumer, ConsumerGroupState, Message
from confluent_kafka.admin import AdminClient

from tests.integration.worker_harness import Newcomer, committed_offsets, metric, read_outputs, read_to_end, wait_for
from worker.app import build_worker
from worker.encoders import Encoder
from worker.loop import Worker
from worker.records import VideoUploaded
from worker.sample import produce_uploads, sample_uploads
from worker.settings import Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = pytest.mark.integration
HEARTBEAT_S = 1.5  # the worker's heartbeat interval with the tests' 6 s session timeout


def group_state(settings: Settings) -> ConsumerGroupState:
    admin = AdminClient(settings.kafka_common())
    future = admin.describe_consumer_groups([settings.worker_group_id], request_timeout=5)[settings.worker_group_id]
    return future.result().state



class RevokeBeforeConsume:
    """The worker's consumer, but the first message `poll()` returns is handed over only once `newcomer` has
    joined and the worker's revoke is pending: `fetch`'s `consume()` serves it before the loop sees the message."""

    def __init__(self, consumer: Consumer, settings: Settings, newcomer: Newcomer) -> None:
        self._consumer = consumer
        self._settings = settings
        self._newcomer = newcomer
        self.taken: Message | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)

    def poll(self, timeout: float) -> Message | None:
        message = self._consumer.poll(timeout)
        if self.taken is None and message is not None and message.error() is None:
            self.taken = message
            self._newcomer.join()
            wait_for(lambda: group_state(self._settings) is not ConsumerGroupState.STABLE, 20, "a join round open")
            time.sleep(2 * HEARTBEAT_S)  # the worker's next heartbeat answer: REBALANCE_IN_PROGRESS, revoke queued
        return message


@contextlib.contextmanager
def running(worker: Worker) -> Iterator[None]:
    thread = threading.Thread(target=worker.run, name="test-worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        worker.request_stop()
        thread.join(timeout=60)
        assert not thread.is_alive(), "worker did not stop within 60 s"


def test_a_message_of_a_partition_revoked_after_its_fetch_is_left_to_the_new_owner(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    ensure_topics(settings, worker_topics(settings), partitions=1)
    uploads = sample_uploads(10, "revoked")
    produce_uploads(settings, uploads)
    newcomer = Newcomer(settings)

    with build_worker(settings) as worker:
        inbox = worker._inbox
        spy = RevokeBeforeConsume(inbox._consumer, settings, newcomer)
        inbox._consumer = spy  # type: ignore[assignment]
        with running(worker):
            try:
                wait_for(lambda: newcomer.assigned == [[0]], 60, "the newcomer owns the partition")
                assert spy.taken is not None and spy.taken.offset() == 0
                time.sleep(2)  # an output of the taken message would have been written by now
                assert metric(worker, "videocat_events_consumed_total") == 0, "the revoked message was processed"
                assert read_to_end(settings, settings.worker_output_topic) == []
                assert committed_offsets(settings, 1)[0] < 1, "the worker committed on a partition it did not hold"
                wait_for(lambda: group_state(settings) is ConsumerGroupState.STABLE, 30, "the group stable")
            finally:
                newcomer.leave()  # the partition goes back to the worker, which reads the message again
            read_outputs(settings, expected=len(uploads))
            wait_for(lambda: committed_offsets(settings, 1) == [len(uploads)], 60, "every offset committed")

    keys = sorted(m.key() for m in read_to_end(settings, settings.worker_output_topic))
    assert keys == sorted(u.video_id.encode() for u in uploads)  # each exactly once: the taken message too


class SlowEncoder:
    """The worker's encoder, 0.2 s slower per call: a backlog is still waiting in the batcher when a
    rebalance comes (only timing is arranged; the vectors are the real encoder's)."""

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def encode(self, texts: list[str]) -> np.ndarray:
        time.sleep(0.2)
        return self._encoder.encode(texts)


def cache_miss_backlog(settings: Settings, count: int, prefix: str) -> list[VideoUploaded]:
    """`count` uploads produced to a one-partition input topic, their texts distinct from each other and from
    earlier runs': every one a cache miss."""
    ensure_topics(settings, worker_topics(settings), partitions=1)
    uploads = [dataclasses.replace(u, title=f"{u.title} {u.video_id}") for u in sample_uploads(count, prefix)]
    produce_uploads(settings, uploads)
    return uploads


@contextlib.contextmanager
def running_slowly(settings: Settings) -> Iterator[Worker]:
    """A worker running in a thread with its encoder slowed down (`SlowEncoder`)."""
    with build_worker(settings) as worker:
        worker._encoder = SlowEncoder(worker._encoder)  # type: ignore[assignment]
        with running(worker):
            yield worker


def test_a_revoke_hands_back_the_uploads_still_waiting_for_the_encoder(make_settings: Callable[..., Settings]) -> None:
    """The revoke finishes the batch in the encoder and commits, but leaves the uploads behind it to the
    partition's next owner. Embedding all of them (up to WORKER_MAX_IN_FLIGHT) held every member of the
    group in the rebalance meanwhile, and, when the poll that served the revoke returned nothing, the
    loop then waited on a batch the drain had already taken and stopped with AttributeError."""
    settings = make_settings(worker_batch_max_size=8)
    uploads = cache_miss_backlog(settings, 200, "handed-back")
    newcomer = Newcomer(settings)

    with running_slowly(settings) as worker:
        try:
            wait_for(lambda: metric(worker, "videocat_events_consumed_total") >= 150, 60, "a backlog consumed")
            newcomer.join()
            wait_for(lambda: newcomer.assigned == [[0]], 60, "the newcomer owns the partition")
            produced = metric(worker, "videocat_events_produced_total")
            consumed = metric(worker, "videocat_events_consumed_total")
            assert 0 < produced < consumed, "nothing was handed back"
            assert metric(worker, "videocat_events_handed_back_total") == consumed - produced
            assert committed_offsets(settings, 1) == [produced], "what was produced is not what was committed"
        finally:
            newcomer.leave()  # the partition goes back to the worker, which reads the rest again
        read_outputs(settings, expected=len(uploads))
        wait_for(lambda: committed_offsets(settings, 1) == [len(uploads)], 60, "every offset committed")

    keys = sorted(m.key() for m in read_to_end(settings, settings.worker_output_topic))
    assert keys == sorted(u.video_id.encode() for u in uploads)  # each exactly once


def test_a_partition_paused_by_flow_control_fetches_again_when_it_comes_back(
    make_settings: Callable[..., Settings],
) -> None:
    """Flow control pauses the partitions at WORKER_MAX_IN_FLIGHT; a revoke then empties the worker. The
    client kept the partition paused when the group gave it back, while the worker, holding nothing,
    never resumed it: the worker consumed nothing more, with a full backlog (a scale-up's rebalance)."""
    settings = make_settings(worker_batch_max_size=8, worker_max_in_flight=40)
    uploads = cache_miss_backlog(settings, 120, "paused")
    newcomer = Newcomer(settings)

    with running_slowly(settings) as worker:
        try:
            wait_for(lambda: metric(worker, "videocat_consumer_paused") == 1, 60, "the partition paused")
            newcomer.join()
            wait_for(lambda: newcomer.assigned == [[0]], 60, "the newcomer owns the partition")
        finally:
            newcomer.leave()
        outputs = read_outputs(settings, expected=len(uploads), timeout_s=30)
        assert len({o["video_id"] for o in outputs}) == len(uploads), "the partition was not fetched again"
