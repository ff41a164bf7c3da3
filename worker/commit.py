"""Commit: track which consumed offsets are done, and what may be committed.

An offset is done once its output (a categorized event or a dead letter) is acknowledged
by the broker. Outputs can be acknowledged out of order, so a partition's commit position
is the first offset that is not yet done: never past a gap. Pure logic, no Kafka calls.
"""

from __future__ import annotations

from collections import deque

TopicPartition = tuple[str, int]


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

    def in_flight(self) -> int:
        return sum(len(p) for p in self._pending.values())

    def uncommitted(self) -> dict[TopicPartition, int]:
        """Positions that moved since the last `mark_committed`."""
        return {tp: pos for tp, pos in self._position.items() if self._committed.get(tp) != pos}

    def mark_committed(self, positions: dict[TopicPartition, int]) -> None:
        self._committed.update(positions)

    def forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            for table in (self._pending, self._done, self._position, self._committed):
                table.pop(tp, None)
