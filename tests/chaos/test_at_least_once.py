"""Chaos, at-least-once: SIGKILLs and group changes lose nothing; duplicates are counted, not forbidden."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.scenario import run_chaos
from worker.settings import DeliveryMode, Settings

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


def chaos_settings(make_settings: Callable[..., Settings], delivery: DeliveryMode) -> Settings:
    """Small batches keep work in flight at every kill; 6 s sessions bound each rebalance."""
    return make_settings(worker_delivery=delivery, worker_batch_max_size=32, worker_batch_max_wait_ms=20,
                         worker_commit_interval_ms=500, kafka_session_timeout_ms=6000)


def test_kills_and_rebalances_lose_nothing(make_settings: Callable[..., Settings], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    report = run_chaos(chaos_settings(make_settings, DeliveryMode.AT_LEAST_ONCE), tmp_path)
    with capsys.disabled():
        print("\n" + report.summary())
    assert report.kills == 3
    assert report.missing == 0, f"{report.missing} uploads have no output; worker logs in {tmp_path}"
    assert report.unexpected == 0, f"{report.unexpected} outputs for video ids never produced"
