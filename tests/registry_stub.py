"""Schema registry stand-ins speaking the real HTTP API (a Confluent Schema Registry is a JVM service that
cannot run here): `FakeRegistry` registers and serves schemas and can be switched off; `LookupOnlyRegistry`
lets clients look schemas up but not register them."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar


class _Registry(ThreadingHTTPServer):
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.paths: list[str] = []  # every request's path, in order

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _path(self) -> str:
        path = self.path.split("?")[0]
        self.server.paths.append(path)  # type: ignore[attr-defined]
        return path


class FakeRegistry(_Registry):
    """GET /schemas/ids/{id} and POST /subjects/{subject}/versions; 503 to everything while `up` is False."""

    def __init__(self) -> None:
        super().__init__(_FakeHandler)
        self.up = True
        self.schemas: list[str] = []  # id - 1 -> schema text
        self.refused = 0  # requests answered 503


class _FakeHandler(_Handler):
    server: FakeRegistry

    def _refused(self) -> bool:
        if not self.server.up:
            self.server.refused += 1
            self._answer(503, {"error_code": 50301, "message": "registry unavailable"})
        return not self.server.up

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        match = re.fullmatch(r"/schemas/ids/(\d+)", self._path())
        if self._refused():
            return
        schema_id = int(match.group(1)) if match else 0
        if not 0 < schema_id <= len(self.server.schemas):
            self._answer(404, {"error_code": 40403, "message": "Schema not found"})
            return
        self._answer(200, {"schema": self.server.schemas[schema_id - 1]})

    def do_POST(self) -> None:  # noqa: N802
        self._path()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self._refused():
            return
        if body["schema"] not in self.server.schemas:
            self.server.schemas.append(body["schema"])
        self._answer(200, {"id": self.server.schemas.index(body["schema"]) + 1})


class LookupOnlyRegistry(_Registry):
    """POST /subjects/{subject} answers from `registered`; POST /subjects/{subject}/versions is refused (403)."""

    def __init__(self) -> None:
        super().__init__(_LookupOnlyHandler)
        self.registered: dict[tuple[str, str], int] = {}  # (subject, schema text) -> id


class _LookupOnlyHandler(_Handler):
    server: LookupOnlyRegistry

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        path = self._path()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        subject = path.removeprefix("/subjects/")
        schema_id = self.server.registered.get((subject, body["schema"]))
        if path.endswith("/versions"):
            self._answer(403, {"error_code": 40301, "message": "not allowed to register"})
        elif schema_id is None:
            self._answer(404, {"error_code": 40403, "message": "Schema not found"})
        else:
            self._answer(200, {"subject": subject, "id": schema_id, "version": 1, "schema": body["schema"]})


R = TypeVar("R", bound=_Registry)


@contextlib.contextmanager
def serving(registry: R) -> Iterator[R]:
    threading.Thread(target=registry.serve_forever, daemon=True).start()
    try:
        yield registry
    finally:
        registry.shutdown()
        registry.server_close()


def fake_registry() -> contextlib.AbstractContextManager[FakeRegistry]:
    return serving(FakeRegistry())


def lookup_only_registry() -> contextlib.AbstractContextManager[LookupOnlyRegistry]:
    return serving(LookupOnlyRegistry())
