"""A commit the broker does not confirm is not done: the worker sends it again until it is.

Real worker, Redis, model and Tansu; the broker's OffsetCommit requests fail on cue through a proxy
(`kafka_proxy`: Tansu itself accepts every commit, and a paused broker only delays the answer).
librdkafka reports such a failure only to the consumer's commit callback, never to the caller of an
asynchronous `commit()`. Before the callback counted, a failed periodic commit was taken as done: the
position was never sent again, not even by the synchronous commit at shutdown, and the partition's tail
stayed uncommitted through a clean stop, to be processed again after a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.integration.kafka_proxy import OFFSET_COMMIT, RefusingProxy, broker_behind_proxy
from tests.integration.worker_harness import (
    committed_and_end_offsets,
    committed_offsets,
    read_outputs,
    running_worker,
    wait_for,
)
from worker.sample import produce_uploads, sample_uploads
from worker.settings import Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def proxied_broker() -> Iterator[tuple[str, RefusingProxy]]:
    with broker_behind_proxy() as (bootstrap, proxy):
        yield bootstrap, proxy



def test_a_refused_commit_is_sent_again_and_committed_once_the_broker_accepts(
    make_settings: Callable[..., Settings], proxied_broker: tuple[str, RefusingProxy],
) -> None:
    bootstrap, proxy = proxied_broker
    settings = make_settings(kafka_bootstrap_servers=bootstrap)
    ensure_topics(settings, worker_topics(settings), partitions=1)
    uploads = sample_uploads(20, "commit-refused")
    produce_uploads(settings, uploads)

    proxy.refuse = OFFSET_COMMIT
    try:
        with running_worker(settings):
            outputs = read_outputs(settings, expected=len(uploads))
            refused = proxy.refused
            wait_for(lambda: proxy.refused > refused, 30, "a commit refused after every output was written")
            time.sleep(5)  # the last position's periodic commit has been sent and has failed (~3 s with retries)
            assert committed_offsets(settings, 1)[0] < len(uploads), "the proxy let a commit through"

            proxy.refuse = None  # the coordinator answers again; the worker has nothing new to commit
            wait_for(lambda: committed_offsets(settings, 1) == [len(uploads)], 30,
                       "the refused position committed by the worker's next periodic commit")
    finally:
        proxy.refuse = None

    committed, ends = committed_and_end_offsets(settings, 1)
    assert committed == ends == [len(uploads)]
    assert {o["video_id"] for o in outputs} == {u.video_id for u in uploads}
