"""Broker outage: the broker stops answering at start-up, or for a while mid-run, for longer than the
consumer's session timeout. The worker retries, does not exit, and loses nothing that was acknowledged.

This test starts its own broker. Restarting Tansu's memory storage loses every topic and offset, so the
outage is a SIGSTOP/SIGCONT of the broker process: connections stay open but nothing answers, like a
broker stalled by a network partition or a long GC pause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.integration.worker_harness import committed_and_end_offsets, read_outputs, running_worker
from worker.localbroker import LocalBroker
from worker.sample import produce_uploads, sample_uploads
from worker.settings import DeliveryMode, Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = pytest.mark.integration
PARTITIONS = 2
OUTAGE_S = 10.0  # > kafka_session_timeout_ms (6 s): the group coordinator sees the member as gone


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as own_broker:
        yield own_broker


@pytest.fixture()
def outage_settings(make_settings: Callable[..., Settings], broker: LocalBroker) -> Settings:
    settings = make_settings(kafka_bootstrap_servers=broker.bootstrap, worker_batch_max_size=16)
    ensure_topics(settings, worker_topics(settings), partitions=PARTITIONS)
    return settings


def assert_everything_committed(settings: Settings, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (offsets := committed_and_end_offsets(settings, PARTITIONS))[0] != offsets[1]:
        assert time.monotonic() < deadline, f"committed offsets short of the ends: {offsets}"
        time.sleep(0.5)


@pytest.mark.parametrize("delivery", [DeliveryMode.AT_LEAST_ONCE, DeliveryMode.EXACTLY_ONCE])
def test_worker_waits_for_a_broker_unreachable_at_start_up(outage_settings: Settings, broker: LocalBroker,
                                                           delivery: DeliveryMode) -> None:
    """Exactly-once used to fail here: building the worker waited 30 s for init_transactions, then raised."""
    outage_settings = outage_settings.model_copy(update={
        "worker_delivery": delivery, "worker_transactional_id": f"{outage_settings.worker_group_id}-tx"})
    uploads = sample_uploads(40, f"startup-{delivery.value}")
    produce_uploads(outage_settings, uploads)
    broker.pause()
    try:
        with running_worker(outage_settings) as worker:
            time.sleep(OUTAGE_S)
            ready, _checks = worker.health.ready()
            assert not ready  # no partitions while the broker is away: not ready, but alive
            assert worker.health.live()[0]
            broker.resume()
            outputs = read_outputs(outage_settings, expected=len(uploads))
            assert_everything_committed(outage_settings)
    finally:
        broker.resume()
    assert {o["video_id"] for o in outputs} == {u.video_id for u in uploads}


def test_worker_rides_out_a_broker_pause_mid_run(outage_settings: Settings, broker: LocalBroker) -> None:
    first, second = sample_uploads(300, "first"), sample_uploads(100, "second")
    with running_worker(outage_settings):
        produce_uploads(outage_settings, first[:100])
        read_outputs(outage_settings, expected=100)
        produce_uploads(outage_settings, first[100:])  # the worker is busy with these when the broker stops
        broker.pause()
        time.sleep(OUTAGE_S)
        broker.resume()
        produce_uploads(outage_settings, second)
        outputs = read_outputs(outage_settings, expected=400)
        assert_everything_committed(outage_settings)
    produced = {u.video_id for u in first + second}
    assert {o["video_id"] for o in outputs} == produced
