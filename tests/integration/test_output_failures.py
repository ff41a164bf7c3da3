"""An output the broker refuses for good (a missing ACL) stops the worker with that error, through a real
worker, broker and model; what was acknowledged is committed, the refused input is not (docs/reliability.md,
"Outputs that cannot be written"). The Outbox's own handling of each failure is in tests/unit/test_produce.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from tests.integration.worker_harness import committed_and_end_offsets, read_outputs, wait_for
from worker.app import build_worker
from worker.delivery_errors import OutputFailed
from worker.loop import Worker
from worker.sample import produce_uploads, sample_uploads
from worker.settings import DeliveryMode, Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = pytest.mark.integration


class RefusingOutputTopic:
    """The worker's producer, except that the output topic refuses every message as unauthorized (a
    missing ACL): something the local broker cannot be made to do."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer, self._topic = producer, topic

    def produce(self, topic: str, *args: object, **kwargs: object) -> None:
        if topic == self._topic:
            raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
        self._producer.produce(topic, *args, **kwargs)

    def __len__(self) -> int:
        return len(self._producer)

    def __getattr__(self, name: str) -> object:
        return getattr(self._producer, name)


@pytest.mark.parametrize("delivery", [DeliveryMode.AT_LEAST_ONCE, DeliveryMode.EXACTLY_ONCE])
def test_an_output_that_cannot_be_written_stops_the_worker_with_that_error(
    make_settings: Callable[..., Settings], unique_name: str, delivery: DeliveryMode
) -> None:
    """OutputFailed is what the worker exits with (not a second error from the stop after it: an aborted
    transaction committed, a refused output sent again); what was acknowledged is committed, and the
    refused input is not."""
    settings = make_settings(worker_delivery=delivery, worker_transactional_id=f"{unique_name}-tx")
    ensure_topics(settings, worker_topics(settings), partitions=1)
    first, refused = sample_uploads(2)
    errors: list[BaseException] = []

    def run(worker: Worker) -> None:
        try:
            worker.run()
        except BaseException as error:  # noqa: BLE001 - what the thread ended with is the point
            errors.append(error)

    with build_worker(settings) as worker:
        thread = threading.Thread(target=run, args=(worker,), daemon=True)
        thread.start()
        produce_uploads(settings, [first])
        read_outputs(settings, expected=1)
        wait_for(lambda: committed_and_end_offsets(settings, 1)[0] == [1], 30, "the first upload's commit")
        worker._outbox._producer = RefusingOutputTopic(worker._outbox._producer, settings.worker_output_topic)
        produce_uploads(settings, [refused])
        thread.join(60)
        assert not thread.is_alive()
    assert [type(error) for error in errors] == [OutputFailed], errors
    assert "TOPIC_AUTHORIZATION_FAILED" in str(errors[0])
    assert committed_and_end_offsets(settings, 1) == ([1], [2])  # read again after the restart
