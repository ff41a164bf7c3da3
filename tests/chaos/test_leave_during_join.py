"""A member stopped while its JoinGroup is pending must not leave the group without a leader.

Tansu 0.6 keeps a member that sends LeaveGroup during its pending join as the group's leader for
good (docs/reliability.md, "Tansu notes"); `Inbox.close` therefore waits for the join to settle
before leaving. Here: a sole member is rebalanced by a newcomer and closed right after its revoke,
while its rejoin is pending; the newcomer must then get every partition.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from worker.consume import Inbox
from worker.settings import Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = [pytest.mark.chaos, pytest.mark.integration]
PARTITIONS = 6


def poll_until(inbox: Inbox, done: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s"
        inbox.poll(1, 0.1)


def test_member_closed_during_its_join_leaves_a_working_group(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(kafka_session_timeout_ms=6000)
    ensure_topics(settings, worker_topics(settings), partitions=PARTITIONS)
    revokes: list[list[tuple[str, int]]] = []
    leaver = Inbox(settings, on_assign=lambda _tps: None, on_revoke=revokes.append)
    leaver.subscribe()
    poll_until(leaver, lambda: len(leaver.assignment) == PARTITIONS, 30, "first member assigned")

    newcomer = Inbox(settings, on_assign=lambda _tps: None, on_revoke=lambda _tps: None)
    newcomer.subscribe()
    try:
        poll_until(leaver, lambda: bool(revokes), 30, "first member revoked for the newcomer")
        leaver.close()  # its rejoin is pending at the coordinator now
        poll_until(newcomer, lambda: len(newcomer.assignment) == PARTITIONS, 40,
                   "newcomer owns every partition after the other member left")
    finally:
        newcomer.close()
