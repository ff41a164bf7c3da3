"""A member stopped while a join round is open must not leave the group without a leader.

Tansu 0.6 keeps a member that sends LeaveGroup while a join round is open as the group's leader
for good (docs/reliability.md, "Tansu notes"); `Inbox.close` therefore leaves only once its own
join is answered and the coordinator describes the group as Stable. Two ways a round is open at
close: the member's own rejoin is pending (closed right after its revoke), or a newcomer's join is
pending and the member, long settled, has not heard of it yet. Either way the newcomer must then
get every partition.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from worker.consume import Inbox, PartitionsCallback
from worker.settings import Settings
from worker.topics import ensure_topics, worker_topics

pytestmark = [pytest.mark.chaos, pytest.mark.integration]
PARTITIONS = 6


def poll_until(inbox: Inbox, done: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s"
        inbox.poll(1, 0.1)


def ignore(_partitions: list[tuple[str, int]]) -> None:
    pass


def sole_member(settings: Settings, on_revoke: PartitionsCallback = ignore) -> Inbox:
    member = Inbox(settings, on_assign=ignore, on_revoke=on_revoke)
    member.subscribe()
    poll_until(member, lambda: len(member.assignment) == PARTITIONS, 30, "first member assigned")
    return member


def test_member_closed_during_its_join_leaves_a_working_group(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(kafka_session_timeout_ms=6000)
    ensure_topics(settings, worker_topics(settings), partitions=PARTITIONS)
    revokes: list[list[tuple[str, int]]] = []
    leaver = sole_member(settings, revokes.append)

    newcomer = Inbox(settings, on_assign=ignore, on_revoke=ignore)
    newcomer.subscribe()
    try:
        poll_until(leaver, lambda: bool(revokes), 30, "first member revoked for the newcomer")
        leaver.close()  # its rejoin is pending at the coordinator now
        poll_until(newcomer, lambda: len(newcomer.assignment) == PARTITIONS, 40,
                   "newcomer owns every partition after the other member left")
    finally:
        newcomer.close()


def test_member_closed_during_a_newcomers_join_leaves_a_working_group(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(kafka_session_timeout_ms=6000)
    ensure_topics(settings, worker_topics(settings), partitions=PARTITIONS)
    leaver = sole_member(settings)
    newcomer = Inbox(settings, on_assign=ignore, on_revoke=ignore)
    newcomer.subscribe()
    try:
        started = time.monotonic()
        while time.monotonic() - started < 0.5:  # the newcomer's JoinGroup reaches the coordinator
            newcomer.poll(1, 0.05)
        leaver.close()  # settled since long: its heartbeat has not told it of the round yet
        poll_until(newcomer, lambda: len(newcomer.assignment) == PARTITIONS, 40,
                   "newcomer owns every partition after the other member left")
    finally:
        newcomer.close()
