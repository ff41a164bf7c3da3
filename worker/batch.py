"""Batch: gather uploads into one embedding call.

A batch closes on whichever comes first: `max_size` events, `max_chars` characters of
encoder text (a proxy for its token work; embed views count), or its oldest event having
waited `max_wait_s`. Every upload keeps its receive time, so the wait rule is exact.
Pure logic: time is passed in.
"""

from __future__ import annotations

from worker.records import Upload


class Batcher:
    def __init__(self, max_size: int, max_chars: int, max_wait_s: float) -> None:
        if max_size < 1 or max_chars < 1 or max_wait_s < 0:
            raise ValueError("batch limits must be positive")
        self.max_size = max_size
        self.max_chars = max_chars
        self.max_wait_s = max_wait_s
        self._items: list[Upload] = []
        self._chars = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, upload: Upload) -> None:
        self._items.append(upload)
        self._chars += upload.encoder_chars

    def is_full(self) -> bool:
        return len(self._items) >= self.max_size or self._chars >= self.max_chars

    def is_due(self, now: float) -> bool:
        return bool(self._items) and (self.is_full() or now - self._items[0].received_at >= self.max_wait_s)

    def seconds_until_due(self, now: float) -> float | None:
        """How long the loop may block before this batch must close; None when empty."""
        if not self._items:
            return None
        if self.is_full():
            return 0.0
        return max(0.0, self._items[0].received_at + self.max_wait_s - now)

    def discard(self, partitions: set[tuple[str, int]]) -> int:
        """Drop the waiting uploads of these partitions (revoked, or the worker stopping); how many."""
        kept = [u for u in self._items if (u.source.topic, u.source.partition) not in partitions]
        dropped = len(self._items) - len(kept)
        self._items = kept
        self._chars = sum(u.encoder_chars for u in kept)
        return dropped

    def take(self) -> list[Upload]:
        """Up to `max_size` events and `max_chars` characters (always at least one), oldest first."""
        count, chars = 0, 0
        for upload in self._items[: self.max_size]:
            if count and chars + upload.encoder_chars > self.max_chars:
                break
            count += 1
            chars += upload.encoder_chars
        batch, self._items = self._items[:count], self._items[count:]
        self._chars -= chars
        return batch
