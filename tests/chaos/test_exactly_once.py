"""Chaos, exactly-once: the same faults, and a read_committed consumer sees each output once.

Once, that is, on a broker that aborts the transaction a killed replica left open when its restart
fences it, as Kafka does. Tansu 0.6 commits that transaction instead (docs/reliability.md, "Tansu
notes"): the killed replica's last outputs become visible while the offsets sent with them are
dropped, so its restart outputs those inputs again. The test asks the broker which it does, and on
one that commits fenced transactions it requires every duplicate to come from such a transaction:
the first copy made in the seconds before a SIGKILL.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.harness import broker_aborts_fenced_transactions
from tests.chaos.scenario import run_chaos
from tests.chaos.test_at_least_once import chaos_settings
from worker.settings import DeliveryMode, Settings

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


def test_kills_and_rebalances_produce_each_output_exactly_once(
    make_settings: Callable[..., Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = chaos_settings(make_settings, DeliveryMode.EXACTLY_ONCE)
    fencing_aborts = broker_aborts_fenced_transactions(settings)
    report = run_chaos(settings, tmp_path)
    with capsys.disabled():
        print("\n" + report.summary()
              + f"\n  the broker {'aborts' if fencing_aborts else 'COMMITS'} a transaction fenced by a restart")
    assert report.kills == 3
    assert report.missing == 0, f"{report.missing} uploads have no output; worker logs in {tmp_path}"
    if fencing_aborts:
        assert report.duplicates == 0, f"{report.duplicates} duplicate outputs; worker logs in {tmp_path}"
    else:
        unexplained = report.duplicates_not_from_a_killed_transaction()
        assert not unexplained, (f"{len(unexplained)} of {report.duplicates} duplicates were not made just "
                                 f"before a SIGKILL, e.g. {unexplained[:5]}; worker logs in {tmp_path}")
