"""Commit: track which consumed offsets are done, what may be committed, and when to commit it.

An offset is done once its output (a categorized event or a dead letter) is acknowledged
by the broker. Outputs can be acknowledged out of order, so a partition's commit position
is the first offset that is not yet done: never past a gap. No Kafka calls here: `Committer`
hands positions to the consumer (`consume.Inbox.commit`).

A position counts as committed only once the broker confirmed it (`mark_committed`, from the
consumer's commit callback or a committed transaction): a failed commit leaves it uncommitted, so
the next interval sends it again, and a revoke or shutdown commits every position (`positions`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterator
from typing import Protocol

import structlog

from worker.records import DeadLetter

TopicPartition = tuple[str, int]
log = structlog.get_logger(__name__)


class OffsetTracker:
    def __init__(self) -> None:
        self._pending: dict[TopicPartition, deque[int]] = {}
        self._done: dict[TopicPartition, set[int]] = {}
        self._position: dict[TopicPartition, int] = {}  # next offset to commit
        self._committed: dict[TopicPartition, int] = {}

    def track(self, tp: TopicPartition, offset: int) -> None:
        """Register a consumed offset (offsets arrive in increasing order per partition)."""
        self._pending.setdefault(tp, deque()).append(offset)
        self._done.setdefault(tp, set())

    def done(self, tp: TopicPartition, offset: int) -> None:
        pending = self._pending.get(tp)
        if pending is None:  # partition revoked meanwhile: its new owner re-processes it
            return
        done = self._done[tp]
        done.add(offset)
        while pending and pending[0] in done:
            done.discard(first := pending.popleft())
            self._position[tp] = first + 1

    def is_next(self, tp: TopicPartition, offset: int) -> bool:
        """Whether every offset consumed before `offset` on `tp` is done."""
        pending = self._pending.get(tp)
        return bool(pending) and pending[0] == offset

    def in_flight(self) -> int:
        return sum(len(p) for p in self._pending.values())

    def uncommitted(self) -> dict[TopicPartition, int]:
        """Positions the broker has not confirmed yet."""
        return {tp: pos for tp, pos in self._position.items() if self._committed.get(tp) != pos}

    def positions(self) -> dict[TopicPartition, int]:
        """Every partition's commit position, confirmed or not."""
        return dict(self._position)

    def mark_committed(self, positions: dict[TopicPartition, int]) -> None:
        """The broker confirmed these positions. A late confirmation never moves one back, and one for a
        partition no longer held (revoked meanwhile) is ignored."""
        for tp, pos in positions.items():
            if tp in self._pending:
                self._committed[tp] = max(pos, self._committed.get(tp, pos))

    def forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            for table in (self._pending, self._done, self._position, self._committed):
                table.pop(tp, None)


class LettersInOrder:
    """Exactly-once: a dead letter waits until every earlier input of its partition has its output.

    A transaction commits a partition's offsets only up to its first input without an output. A dead
    letter sent while earlier uploads of its partition still wait in the batcher would be committed in
    a transaction whose offsets stop before it, and written again by whoever reads on from those offsets
    (after a crash, or a revoke that hands the waiting uploads back). At-least-once sends letters at once.
    """

    def __init__(self, offsets: OffsetTracker) -> None:
        self._offsets = offsets
        self._waiting: dict[TopicPartition, deque[DeadLetter]] = {}

    def add(self, letter: DeadLetter) -> None:
        self._waiting.setdefault((letter.source.topic, letter.source.partition), deque()).append(letter)

    def due(self) -> Iterator[DeadLetter]:
        """The letters whose earlier inputs all have outputs, in offset order. Lazy: sending one marks it
        done, which can make the next one due."""
        for tp, letters in list(self._waiting.items()):
            while letters and self._offsets.is_next(tp, letters[0].source.offset):
                yield letters.popleft()
            if not letters:
                del self._waiting[tp]

    def forget(self, partitions: Collection[TopicPartition]) -> None:
        for tp in partitions:
            self._waiting.pop(tp, None)


class CommitTarget(Protocol):
    def commit(self, positions: dict[TopicPartition, int], asynchronous: bool = True) -> None:
        """Commit `positions`; confirmations go to `OffsetTracker.mark_committed`."""


class Committer:
    """At-least-once commits (exactly-once commits offsets in its transactions instead: `enabled` False).

    Every `interval_s`, asynchronously, the positions the broker has not confirmed; on revoke and stop,
    synchronously, every position, confirmed or not (a clean stop leaves nothing behind that was acknowledged).
    """

    def __init__(self, offsets: OffsetTracker, target: CommitTarget, interval_s: float, enabled: bool = True,
                 on_failed: Callable[[], None] = lambda: None) -> None:
        self._offsets = offsets
        self._on_failed = on_failed
        self._target = target
        self._interval_s = interval_s
        self._enabled = enabled
        self._next = 0.0

    def maybe_commit(self, now: float) -> None:
        if now >= self._next:
            self._next = now + self._interval_s
            self.commit(asynchronous=True)

    def commit(self, asynchronous: bool) -> None:
        if not self._enabled:
            return
        positions = self._offsets.uncommitted() if asynchronous else self._offsets.positions()
        if not positions:
            return
        try:
            self._target.commit(positions, asynchronous=asynchronous)
        except Exception as error:  # noqa: BLE001 - retried at the next interval
            log.warning("commit_failed", error=str(error))
            self._on_failed()
