"""Chaos, exactly-once: the same faults, and a read_committed consumer sees each output once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.scenario import run_chaos
from tests.chaos.test_at_least_once import chaos_settings
from worker.settings import DeliveryMode, Settings

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


def test_kills_and_rebalances_produce_each_output_exactly_once(
    make_settings: Callable[..., Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_chaos(chaos_settings(make_settings, DeliveryMode.EXACTLY_ONCE), tmp_path)
    with capsys.disabled():
        print("\n" + report.summary())
    assert report.kills == 3
    assert report.missing == 0, f"{report.missing} uploads have no output; worker logs in {tmp_path}"
    assert report.duplicates == 0, f"{report.duplicates} duplicate outputs; worker logs in {tmp_path}"
