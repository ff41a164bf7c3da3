"""Redis outage: the test runs its own redis-server, stops it mid-run and starts it again on the same
port. The worker keeps categorizing without the cache, counts every failed call, logs the outage once
per interval, and caches again when Redis is back; nothing is lost."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable

import pytest
import redis
from structlog.testing import capture_logs

from tests.conftest import start_redis_server
from tests.integration.worker_harness import committed_and_end_offsets, metric, read_outputs, running_worker
from worker.cache import RETRY_AFTER_S, video_key
from worker.localbroker import free_port
from worker.records import VideoUploaded
from worker.sample import produce_uploads, sample_uploads
from worker.settings import Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = pytest.mark.integration
PHASE = 30  # uploads per phase: before, during and after the outage


def fresh_uploads(prefix: str) -> list[VideoUploaded]:
    """Texts never seen before, so every event needs the cache (and the encoder)."""
    run = uuid.uuid4().hex[:8]
    return [dataclasses.replace(u, title=f"{u.title} {run}-{i}") for i, u in enumerate(sample_uploads(PHASE, prefix))]


def test_worker_categorizes_through_a_redis_outage_and_caches_again_after(
    make_settings: Callable[..., Settings],
) -> None:
    port = free_port()
    server = start_redis_server(port)
    settings = make_settings(redis_url=f"redis://127.0.0.1:{port}/0", worker_batch_max_size=8)
    ensure_topics(settings, worker_topics(settings), partitions=2)
    before, during, after = fresh_uploads("before"), fresh_uploads("during"), fresh_uploads("after")
    try:
        with running_worker(settings) as worker:
            produce_uploads(settings, before)
            read_outputs(settings, expected=PHASE)
            assert metric(worker, "videocat_cache_errors_total") == 0

            server.terminate()
            server.wait(10)
            with capture_logs() as logs:
                produce_uploads(settings, during)
                outputs = read_outputs(settings, expected=2 * PHASE)
            assert len(outputs) == 2 * PHASE
            errors = metric(worker, "videocat_cache_errors_total")
            assert errors >= 1  # batches failed ...
            outage_logs = [e for e in logs if e["event"] == "cache_unavailable"]
            assert len(outage_logs) == 1, outage_logs  # ... but the outage is logged once per interval
            assert outage_logs[0]["log_level"] == "warning"

            server = start_redis_server(port)
            time.sleep(RETRY_AFTER_S)  # Redis is tried again this long after its last failure
            produce_uploads(settings, after)
            outputs = read_outputs(settings, expected=3 * PHASE)
            client = redis.Redis(port=port)
            deadline = time.monotonic() + 30
            while (offsets := committed_and_end_offsets(settings, 2))[0] != offsets[1]:
                assert time.monotonic() < deadline, f"offsets not committed: {offsets}"
                time.sleep(0.5)
        assert {o["video_id"] for o in outputs} == {u.video_id for u in before + during + after}
        stored = {o["video_id"]: o["embedding_stored"] for o in outputs}  # what the recommender is told
        assert all(stored[u.video_id] is True for u in before + after)
        assert all(stored[u.video_id] is False for u in during)
        namespace = worker.video_namespace
        assert all(client.exists(video_key(namespace, u.video_id)) for u in after), "caching did not resume"
        assert not any(client.exists(video_key(namespace, u.video_id)) for u in during)  # the new server is empty
    finally:
        server.terminate()
