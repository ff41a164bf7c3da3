"""A schema registry outage is no fault of the messages: a worker holds them back and retries, and
categorizes them once the registry answers; none is dead-lettered. Real worker, broker and model; the
registry is a small HTTP stand-in (a Confluent Schema Registry is a JVM service that cannot run here)
speaking the two calls the worker makes, with an off switch."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.worker_harness import (
    committed_and_end_offsets,
    metric,
    read_outputs,
    read_to_end,
    running_worker,
)
from worker.sample import produce_uploads, sample_uploads
from worker.settings import Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = pytest.mark.integration


class FakeRegistry(ThreadingHTTPServer):
    """GET /schemas/ids/{id} and POST /subjects/{subject}/versions; 503 to everything while `up` is False."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RegistryHandler)
        self.up = True
        self.schemas: list[str] = []  # id - 1 -> schema text
        self.refused = 0  # requests answered 503

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RegistryHandler(BaseHTTPRequestHandler):
    server: FakeRegistry

    def log_message(self, *_args: object) -> None:
        pass

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refused(self) -> bool:
        if not self.server.up:
            self.server.refused += 1
            self._answer(503, {"error_code": 50301, "message": "registry unavailable"})
        return not self.server.up

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self._refused():
            return
        match = re.fullmatch(r"/schemas/ids/(\d+)", self.path.split("?")[0])
        schema_id = int(match.group(1)) if match else 0
        if not 0 < schema_id <= len(self.server.schemas):
            self._answer(404, {"error_code": 40403, "message": "Schema not found"})
            return
        self._answer(200, {"schema": self.server.schemas[schema_id - 1]})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self._refused():
            return
        if body["schema"] not in self.server.schemas:
            self.server.schemas.append(body["schema"])
        self._answer(200, {"id": self.server.schemas.index(body["schema"]) + 1})


@contextlib.contextmanager
def fake_registry() -> Iterator[FakeRegistry]:
    registry = FakeRegistry()
    thread = threading.Thread(target=registry.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        registry.shutdown()
        registry.server_close()


def test_a_registry_outage_holds_messages_back_and_dead_letters_none(
    make_settings: Callable[..., Settings],
) -> None:
    with fake_registry() as registry:
        settings = make_settings(schema_registry_url=registry.url)
        ensure_topics(settings, worker_topics(settings), partitions=1)
        uploads = sample_uploads(3, "registry-outage")
        produce_uploads(settings, uploads)  # registry framing: the producer registers the schema
        registry.up = False

        with running_worker(settings) as worker:
            deadline = time.monotonic() + 90
            while metric(worker, "videocat_registry_retries_total") < 2:  # asked, held, asked again
                assert time.monotonic() < deadline, "the worker did not retry the registry"
                time.sleep(0.2)
            assert metric(worker, "videocat_events_consumed_total") == 0
            assert committed_and_end_offsets(settings, 1)[0][0] < 0, "nothing is committed while held"
            registry.up = True
            outputs = read_outputs(settings, expected=len(uploads))
            deadline = time.monotonic() + 60
            while committed_and_end_offsets(settings, 1)[0] != [len(uploads)]:
                assert time.monotonic() < deadline, "offsets not committed after the registry came back"
                time.sleep(0.5)

    assert {o["video_id"] for o in outputs} == {u.video_id for u in uploads}
    assert read_to_end(settings, settings.worker_dlq_topic) == []
