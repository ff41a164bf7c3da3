"""Backpressure: at most `WORKER_MAX_IN_FLIGHT` inputs are consumed but unacknowledged; at the limit the
worker pauses its partitions instead of buffering, and resumes them once acknowledgments catch up.

The broker is stopped (SIGSTOP) for a few seconds while a backlog drains: outputs are no longer
acknowledged, so without backpressure the worker would keep taking in its prefetched messages.
bench/backlog.py shows the memory side on a 100,000-event backlog.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.chaos.harness import reupload_events
from tests.integration.worker_harness import committed_and_end_offsets, read_outputs, running_worker
from worker.localbroker import LocalBroker
from worker.loop import Worker
from worker.sample import produce_uploads
from worker.settings import Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = pytest.mark.integration
LIMIT = 64
EVENTS = 2_000


@pytest.fixture()
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as own_broker:
        yield own_broker


class FlowSpy:
    """Records what the worker's consumer does: pause/resume calls and the in-flight count at each poll."""

    def __init__(self, worker: Worker) -> None:
        inbox, offsets = worker._inbox, worker._offsets
        self.pauses: list[int] = []
        self.resumes: list[int] = []
        self.max_in_flight = 0
        pause, resume, poll = inbox.pause, inbox.resume, inbox.poll

        def spy_pause() -> None:
            self.pauses.append(offsets.in_flight())
            pause()

        def spy_resume() -> None:
            self.resumes.append(offsets.in_flight())
            resume()

        def spy_poll(max_messages: int, timeout_s: float):  # type: ignore[no-untyped-def]
            messages = poll(max_messages, timeout_s)
            self.max_in_flight = max(self.max_in_flight, offsets.in_flight() + len(messages))
            return messages

        inbox.pause, inbox.resume, inbox.poll = spy_pause, spy_resume, spy_poll  # type: ignore[method-assign]


def test_partitions_pause_at_the_in_flight_limit_and_resume(
    make_settings: Callable[..., Settings], broker: LocalBroker,
) -> None:
    settings = make_settings(kafka_bootstrap_servers=broker.bootstrap, worker_max_in_flight=LIMIT,
                             worker_batch_max_size=16)
    ensure_topics(settings, worker_topics(settings), partitions=2)
    produce_uploads(settings, reupload_events(EVENTS, 40, "backlog"))

    with running_worker(settings) as worker:
        spy = FlowSpy(worker)
        read_outputs(settings, expected=100)
        broker.pause()  # acknowledgments stop; prefetched input is still there to take
        time.sleep(3)
        paused_during_outage = list(spy.pauses)
        broker.resume()
        outputs = read_outputs(settings, expected=EVENTS)
        deadline = time.monotonic() + 60
        while (offsets := committed_and_end_offsets(settings, 2))[0] != offsets[1]:
            assert time.monotonic() < deadline, f"offsets not committed: {offsets}"
            time.sleep(0.5)

    assert paused_during_outage, "the worker never paused while nothing was acknowledged"
    assert all(n >= LIMIT for n in spy.pauses)
    assert spy.resumes and all(n < LIMIT for n in spy.resumes)
    assert spy.max_in_flight <= LIMIT, f"{spy.max_in_flight} in flight with a limit of {LIMIT}"
    assert len({o["video_id"] for o in outputs}) == EVENTS
