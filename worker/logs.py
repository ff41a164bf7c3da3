"""Logging: structlog, JSON lines in production, readable key=value in a terminal; `LogLimiter` for
events that can repeat many times a second."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import structlog

log = structlog.get_logger(__name__)


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


# TensorFlow's C++ log lines (absl format: severity letter, MMDD, time, thread id, file:line]) and absl's
# banner about them.
_NATIVE_LINE = re.compile(rb"^(?:[IWEF]\d{4} [\d:.]+ +\d+ [^\]\s]+\] |WARNING: All log messages before absl::)")


@contextlib.contextmanager
def native_logs_as_events(source: str) -> Iterator[None]:
    """Inside the block, TensorFlow's C++ log lines on file descriptor 2 become debug log events.

    TensorFlow logs through absl before TF_CPP_MIN_LOG_LEVEL applies, as raw lines between the JSON
    ones (`E0000 ... failed call to cuInit` on every CPU host). Those are held and logged as
    `native_log` events (WORKER_LOG_LEVEL=debug shows them) when the block ends; every other line
    on the descriptor (Python's own logs, a crash report) goes through to stderr as it comes.
    """
    sys.stderr.flush()
    saved, (read_end, write_end) = os.dup(2), os.pipe()
    held: list[bytes] = []

    def forward() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if _NATIVE_LINE.match(line):
                    held.append(line)
                else:
                    while line:
                        line = line[os.write(saved, line) :]

    reader = threading.Thread(target=forward, name="native-stderr", daemon=True)
    reader.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end closes: the reader sees its end
        reader.join()
        os.close(saved)
        for line in held:
            log.debug("native_log", source=source, line=line.decode("utf-8", "replace").rstrip())


class LogLimiter:
    """At most one line per key per interval; `allow` says how many were held back since the last one."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._next: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def allow(self, key: str) -> int | None:
        now = self._clock()
        if key in self._next and now < self._next[key]:
            self._held[key] += 1
            return None
        self._next[key] = now + self._interval_s
        return self._held.pop(key, 0)
