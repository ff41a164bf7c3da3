"""A worker as the benches run it: `python -m worker run` in a subprocess, watched from outside.

Readiness from /readyz, metrics from /metrics, peak RSS and CPU seconds from psutil, and
optionally a py-spy profile.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent


class MeasuredWorker:
    """`python -m worker run` watched from outside: readiness, metrics, peak RSS, an optional profile."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        self.process = subprocess.Popen([sys.executable, "-m", "worker", "run"], env=env, cwd=REPO,
                                        stdout=subprocess.DEVNULL, stderr=open(os.devnull, "w"))  # noqa: SIM115
        self.profiler: subprocess.Popen | None = None
        self.peak_rss = 0
        self._watch = threading.Thread(target=self._sample_rss, daemon=True)
        self._watch.start()

    def _sample_rss(self) -> None:
        proc = psutil.Process(self.process.pid)
        while self.process.poll() is None:
            with contextlib.suppress(psutil.Error):
                self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
            time.sleep(0.1)

    def wait_ready(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "worker exited"
            with contextlib.suppress(OSError), urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/readyz", timeout=1
            ) as response:
                if response.status == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError("worker not ready")

    def profile(self, to: Path) -> None:
        """Sample the worker with py-spy from now until it exits (collapsed stacks in `to`)."""
        # py-spy installed in this virtual environment, whether or not it is activated
        py_spy = shutil.which("py-spy", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
        if py_spy is None:
            raise FileNotFoundError("py-spy not found: pip install py-spy")
        self.profiler = subprocess.Popen(
            [py_spy, "record", "--pid", str(self.process.pid), "--rate", "250", "--format", "raw",
             "--output", str(to), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return 0.0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        if self.profiler is not None:  # py-spy writes its file once the worker has exited
            self.profiler.wait(timeout=60)


@contextlib.contextmanager
def running(env: dict[str, str], port: int) -> Iterator[MeasuredWorker]:
    worker = MeasuredWorker(env, port)
    try:
        yield worker
    finally:
        worker.stop()


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    with contextlib.suppress(psutil.Error):
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    return 0.0
