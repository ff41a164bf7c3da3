"""A schema registry that lets clients look schemas up but not register them (HTTP, like the real one)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LookupOnlyRegistry(ThreadingHTTPServer):
    """POST /subjects/{subject} answers from `registered`; POST /subjects/{subject}/versions is refused (403).

    `paths` records every request's path."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.registered: dict[tuple[str, str], int] = {}  # (subject, schema text) -> id
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: LookupOnlyRegistry

    def log_message(self, *_args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        path = self.path.split("?")[0]
        self.server.paths.append(path)
        subject = path.removeprefix("/subjects/")
        schema_id = self.server.registered.get((subject, body["schema"]))
        if path.endswith("/versions"):
            status, answer = 403, {"error_code": 40301, "message": "not allowed to register"}
        elif schema_id is None:
            status, answer = 404, {"error_code": 40403, "message": "Schema not found"}
        else:
            status, answer = 200, {"subject": subject, "id": schema_id, "version": 1, "schema": body["schema"]}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def lookup_only_registry() -> Iterator[LookupOnlyRegistry]:
    registry = LookupOnlyRegistry()
    threading.Thread(target=registry.serve_forever, daemon=True).start()
    try:
        yield registry
    finally:
        registry.shutdown()
        registry.server_close()
