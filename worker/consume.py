"""Consume: a thin typed wrapper around confluent_kafka.Consumer for the worker's group.

Auto-commit and auto offset store are off: offsets are committed explicitly by the loop,
only up to what `commit.OffsetTracker` says is done. What the broker confirms of a commit (the
`on_commit` callback for asynchronous ones, the answer for synchronous ones) goes back to the loop
through `on_committed`; a failed commit is logged and confirms nothing.

`Inbox.poll` returns only messages of partitions still assigned: a message taken from `poll()` before
`consume()` served a revoke belongs to the partition's next owner, which reads it again.

`Inbox.close` leaves the group only once the coordinator describes it as Stable (see its docstring).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import structlog
from confluent_kafka import Consumer, ConsumerGroupState, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from worker.logs import LogLimiter
from worker.records import SourceRef
from worker.settings import Settings

log = structlog.get_logger(__name__)
PartitionsCallback = Callable[[list[tuple[str, int]]], None]
CommittedCallback = Callable[[dict[tuple[str, int], int]], None]
# How long a stopping member keeps serving the group, waiting for it to be Stable. A round
# ends only when every member has rejoined: with a killed member awaiting its session timeout and
# restarted replicas joining after their model load (10-20 s on a busy node), the chaos test saw
# waits of 11 s, and 15 s proved too short on CI. Within the pod's 60 s termination grace period.
SETTLE_BEFORE_LEAVE_S = 40.0


def consumer_config(settings: Settings) -> dict[str, Any]:
    return {
        **settings.kafka_common(),
        "group.id": settings.worker_group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.kafka_session_timeout_ms,
        "heartbeat.interval.ms": max(500, settings.kafka_session_timeout_ms // 4),
        # The loop polls at least every batch (about a second), so 45 s is ample. (It also bounds a
        # rebalance, but did not cure the Tansu stall where a replica idled for minutes: that was a
        # member leaving mid-join, see `Inbox.close`.)
        "max.poll.interval.ms": settings.kafka_max_poll_interval_ms,
        "isolation.level": "read_committed",
        "statistics.interval.ms": 5000,  # refreshes the cached high watermarks used for the lag gauge
        "fetch.wait.max.ms": settings.kafka_fetch_wait_max_ms,
    }


def fetch(consumer: Consumer, max_messages: int, timeout_s: float) -> list[Message]:
    """Block for the first message only, then take what is already fetched (up to `max_messages`).

    `consume(n, t)` alone waits for all n messages or the whole timeout, stalling a loop that could work.
    """
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    if max_messages <= 1:
        return [first]
    return [first, *consumer.consume(num_messages=max_messages - 1, timeout=0)]


def source_of(message: Message) -> SourceRef:
    return SourceRef(message.topic(), message.partition(), message.offset())


class Inbox:
    def __init__(
        self, settings: Settings, on_assign: PartitionsCallback, on_revoke: PartitionsCallback,
        on_committed: CommittedCallback | None = None, on_commit_failed: Callable[[], None] = lambda: None,
    ) -> None:
        self._brokers_up = True
        self._on_committed = on_committed
        self._on_commit_failed = on_commit_failed
        self._consumer = Consumer({**consumer_config(settings), "stats_cb": self._stats, "error_cb": self._error,
                                   "on_commit": self._committed})
        self._topic = settings.worker_input_topic
        self._group_id = settings.worker_group_id
        self._admin_config = settings.kafka_common()
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self.assignment: set[tuple[str, int]] = set()
        self._log = LogLimiter(30.0)
        self.paused = False  # by flow control (pause / resume); a new assignment is not
        self._held: dict[tuple[str, int], float] = {}  # partition -> when to fetch it again (monotonic)
        self._subscribed = False
        # False from subscribe (and from each eager revoke) until the group answers with an
        # assignment, possibly empty: while False, a JoinGroup of ours may be pending.
        self._join_settled = False

    def _stats(self, stats_json: str) -> None:
        brokers = json.loads(stats_json).get("brokers", {})
        self._brokers_up = any(b.get("state") == "UP" for b in brokers.values() if b.get("nodeid", -1) >= 0)

    def _error(self, error: KafkaError) -> None:
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self._brokers_up = False
        self._log_error(error)

    def broker_reachable(self) -> bool:
        return self._brokers_up

    def subscribe(self) -> None:
        self._consumer.subscribe([self._topic], on_assign=self._assigned, on_revoke=self._revoked,
                                 on_lost=self._revoked)
        self._subscribed = True

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._join_settled = True
        self.paused = False  # a new assignment fetches
        tps = [(p.topic, p.partition) for p in partitions]
        self.assignment.update(tps)
        self._on_assign(tps)

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        self._join_settled = False  # eager protocol: a revoke is followed by a new JoinGroup
        self._on_revoke(tps)  # first: the loop drains, and counts what it still holds, from `assignment` as it was
        self.assignment.difference_update(tps)
        for tp in tps:
            self._held.pop(tp, None)
        # librdkafka keeps a partition's pause through a rebalance: given back later, a partition paused by
        # flow control or held for the registry would never fetch again (nothing here would resume it)
        self._consumer.resume(partitions)

    def poll(self, max_messages: int, timeout_s: float) -> list[Message]:
        """Messages without errors of partitions still assigned; transient errors (broker down, ...) are
        logged at most every 30 s."""
        messages = fetch(self._consumer, max_messages, timeout_s)
        good = []
        for message in messages:
            error = message.error()
            if error is None:
                if self._owns(message):
                    good.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                self._log_error(error)
        return good

    def _owns(self, message: Message) -> bool:
        """False for a message of a partition revoked since it was fetched (by `fetch`'s `consume()`, which
        serves rebalance callbacks): neither processed nor committed here, its partition's new owner reads it."""
        if (message.topic(), message.partition()) in self.assignment:
            return True
        log.info("revoked_partition_message_dropped", topic=message.topic(), partition=message.partition(),
                 offset=message.offset())
        return False

    def _log_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise RuntimeError(f"fatal consumer error: {error.str()}")
        self._warn("consumer_error", code=error.name(), reason=error.str())

    def _warn(self, event: str, **fields: object) -> None:
        """A warning, at most every 30 s per event: a broker or registry outage repeats them many times."""
        if (held_back := self._log.allow(event)) is not None:
            log.warning(event, held_back=held_back, **fields)

    def commit(self, positions: dict[tuple[str, int], int], asynchronous: bool = True) -> None:
        """Commit `positions`; what the broker confirms goes to `on_committed` (asynchronous: from a later poll)."""
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        if not offsets:
            return
        if asynchronous:
            self._consumer.commit(offsets=offsets, asynchronous=True)
            return
        try:
            answered = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            self._committed(error.args[0], offsets)
            return
        self._committed(None, answered or [])

    def _committed(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """A commit's result (librdkafka's `on_commit` callback for asynchronous ones)."""
        confirmed = {(p.topic, p.partition): p.offset for p in partitions if error is None and p.error is None}
        if len(confirmed) < len(partitions):
            failed = {f"{p.topic}[{p.partition}]": p.offset for p in partitions
                      if (p.topic, p.partition) not in confirmed}
            reasons = sorted({e.str() for e in (error, *(p.error for p in partitions)) if e is not None})
            self._warn("commit_failed", partitions=failed, reason="; ".join(reasons))
            self._on_commit_failed()
        if confirmed and self._on_committed is not None:
            self._on_committed(confirmed)

    def flow_control(self, in_flight: int, limit: int) -> bool:
        """Pause every partition at `limit` inputs not yet acknowledged, resume below half of it; whether paused."""
        if not self.paused and in_flight >= limit:
            self.pause()
        elif self.paused and in_flight < limit // 2:
            self.resume()
        return self.paused

    def pause(self) -> None:
        self.paused = True
        self._consumer.pause([TopicPartition(t, p) for t, p in self.assignment])

    def resume(self) -> None:
        self.paused = False
        self._consumer.resume([TopicPartition(t, p) for t, p in self.assignment if (t, p) not in self._held])

    def hold(self, partition: tuple[str, int], offset: int, seconds: float, reason: str) -> None:
        """Fetch nothing from `partition` for `seconds`, then fetch it again from `offset`: that message is retried."""
        self._consumer.pause([TopicPartition(*partition)])
        self._consumer.seek(TopicPartition(*partition, offset))
        self._held[partition] = time.monotonic() + seconds
        self._warn("partition_held", partition=partition, offset=offset, retry_in_s=seconds, reason=reason)

    def release_held(self) -> None:
        """Fetch again from the held partitions whose time is up (unless all are paused)."""
        now = time.monotonic()
        due = [partition for partition, until in self._held.items() if until <= now]
        for partition in due:
            del self._held[partition]
        if due and not self.paused:
            self._consumer.resume([TopicPartition(t, p) for t, p in due])

    def lag(self) -> dict[tuple[str, int], int]:
        """Per assigned partition: high watermark minus the consumer's position (from cached stats)."""
        result = {}
        for topic, partition in self.assignment:
            tp = TopicPartition(topic, partition)
            try:
                _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
                (position,) = self._consumer.position([tp])
            except Exception:  # noqa: BLE001 - lag is best effort, never a reason to stop
                continue
            if high >= 0 and position.offset >= 0:
                result[(topic, partition)] = max(0, high - position.offset)
        return result

    def group_metadata(self) -> Any:
        return self._consumer.consumer_group_metadata()

    def close(self) -> None:
        """Leave the group, but only when no join round is open: neither ours nor another member's.

        Tansu 0.6 keeps a member that sends LeaveGroup while a join round is open as the group's
        leader forever: every later member is told to follow it, its SyncGroup times out with
        REBALANCE_IN_PROGRESS, and the group never consumes again (docs/reliability.md, "Tansu
        notes"). The round may be our own pending JoinGroup, or one a newcomer opened that our
        heartbeat has not reported yet; the coordinator knows at once, so ask it (DescribeGroups).
        Keep serving the group (bounded) until our latest join has been answered and the group is
        Stable; messages fetched meanwhile are dropped uncommitted.
        """
        if self._subscribed:
            started = time.monotonic()
            admin = AdminClient(self._admin_config)
            state = self._state_before_leaving(admin)
            while state is not ConsumerGroupState.STABLE and time.monotonic() < started + SETTLE_BEFORE_LEAVE_S:
                self._consumer.poll(0.2)
                state = self._state_before_leaving(admin)
            report = log.info if state is ConsumerGroupState.STABLE else log.warning
            report("leave_group", state=state.name, join_settled=self._join_settled,
                   waited_s=round(time.monotonic() - started, 1))
        self._consumer.close()

    def _state_before_leaving(self, admin: AdminClient) -> ConsumerGroupState:
        """The group's state as the coordinator describes it, once our own join has been answered
        (UNKNOWN before that). Where the broker cannot describe the group, it is assumed STABLE."""
        if not self._join_settled:
            return ConsumerGroupState.UNKNOWN
        try:
            future = admin.describe_consumer_groups([self._group_id], request_timeout=5)[self._group_id]
            return future.result().state
        except Exception as error:  # noqa: BLE001 - never a reason to hold a stopping worker for 40 s
            log.warning("describe_group_failed", error=str(error))
            return ConsumerGroupState.STABLE
