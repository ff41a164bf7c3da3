import os

import pytest
import structlog

from worker.logs import LogLimiter, native_logs_as_events

ABSL_LINE = b"E0000 00:00:1795295267.270951   17441 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n"
BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"


def test_tensorflow_native_lines_become_debug_events_and_other_lines_pass_through(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with structlog.testing.capture_logs() as events, native_logs_as_events("tensorflow"):
        os.write(2, BANNER + b"a crash report line\n" + ABSL_LINE)
    err = capfd.readouterr().err
    assert err == "a crash report line\n"
    assert [(e["event"], e["log_level"], e["source"]) for e in events] == [("native_log", "debug", "tensorflow")] * 2
    assert events[1]["line"] == ABSL_LINE.decode().rstrip()


def test_stderr_is_restored_when_the_block_raises(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), native_logs_as_events("tensorflow"):
        raise RuntimeError("load failed")
    os.write(2, ABSL_LINE)
    assert capfd.readouterr().err == ABSL_LINE.decode()


def test_log_limiter_allows_one_line_per_key_per_interval_and_counts_the_rest() -> None:
    now = [0.0]
    limiter = LogLimiter(30.0, clock=lambda: now[0])
    assert [limiter.allow("a"), limiter.allow("a"), limiter.allow("b"), limiter.allow("a")] == [0, None, 0, None]
    now[0] = 30.0
    assert limiter.allow("a") == 2
