"""A Tansu broker behind a TCP proxy that can refuse one kind of Kafka request: a broker fault on cue.

Tansu accepts every OffsetCommit (it checks neither the generation nor the membership), and pausing the
broker (SIGSTOP) only delays a commit's answer, so neither makes a commit fail. Here the broker advertises
the proxy's address, so every client connection goes through it; while `refuse` names an API key, the proxy
drops the connection that carries such a request, as a coordinator that crashes mid-request or a network
fault does. librdkafka retries, then reports `_TRANSPORT` to the commit's callback; the member keeps its
partitions (its session outlives a dropped connection).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator

from confluent_kafka.admin import AdminClient

from worker.localbroker import free_port, tansu_binary

OFFSET_COMMIT = 8  # the Kafka API key of OffsetCommit


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


class RefusingProxy:
    """Forwards 127.0.0.1:`port` to `target_port`, request by request (4-byte size, then api_key first)."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.refuse: int | None = None  # API key whose requests are refused, None: forward everything
        self.refused = 0  # requests refused so far
        threading.Thread(target=self._accept, name="kafka-proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(self._target)
            except OSError:  # the broker is not listening (yet)
                _close(client)
                continue
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=self._responses, args=(server, client), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while True:
                size = _read_exactly(client, 4)
                request = _read_exactly(client, struct.unpack(">i", size)[0])
                if struct.unpack(">h", request[:2])[0] == self.refuse:
                    self.refused += 1
                    break
                server.sendall(size + request)
        except (EOFError, OSError):
            pass
        _close(client, server)

    @staticmethod
    def _responses(server: socket.socket, client: socket.socket) -> None:
        try:
            while chunk := server.recv(65536):
                client.sendall(chunk)
        except OSError:
            pass
        _close(client, server)

    def close(self) -> None:
        self._listener.close()


@contextlib.contextmanager
def broker_behind_proxy() -> Iterator[tuple[str, RefusingProxy]]:
    """A throwaway Tansu (memory storage) that advertises the proxy's address; yields the bootstrap and the proxy."""
    broker_port = free_port()
    proxy = RefusingProxy(broker_port)
    bootstrap = f"127.0.0.1:{proxy.port}"
    process = subprocess.Popen(
        [str(tansu_binary()), "broker", "--listener-url", f"tcp://127.0.0.1:{broker_port}",
         "--advertised-listener-url", f"tcp://{bootstrap}", "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_ready(bootstrap, process)
        yield bootstrap, proxy
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        proxy.close()


def _wait_ready(bootstrap: str, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode}")
        try:
            admin.list_topics(timeout=1)
            return
        except Exception:  # noqa: BLE001 - not answering yet
            time.sleep(0.2)
    raise TimeoutError(f"tansu did not answer on {bootstrap} within {timeout_s:.0f} s")
