"""Loop: the worker's only while-loop.

    consume -> decode -> batch -> categorize (embed with cache, classify) -> encode -> produce -> commit

Pipelined by one batch: while the encoder embeds batch N on its own thread, this loop decodes
the next messages and, once N is embedded, starts N+1 on the encoder before it classifies,
encodes and produces N. Outputs and offsets are unchanged by this: a batch is still sent
whole, in order, and an offset is committed only once its output is acknowledged.

At-least-once (default): an input's offset becomes committable when the broker acknowledges
its output (categorized event or dead letter); offsets are committed every
`WORKER_COMMIT_INTERVAL_MS` until the broker confirms them, and all synchronously on revoke and shutdown.
Exactly-once: outputs and offsets go in one Kafka transaction per step.
Backpressure: past `WORKER_MAX_IN_FLIGHT` unacknowledged inputs the partitions are paused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor

import structlog
from confluent_kafka import Message

from worker.avro import RegistryUnavailable, make_codec, prepare_output_schemas
from worker.batch import Batcher
from worker.cache import EmbeddingCache
from worker.categorize import BatchOutcome, StartedBatch, label_batch, start_batch
from worker.commit import Committer, LettersInOrder, OffsetTracker, TopicPartition
from worker.consume import Inbox, source_of
from worker.decode import Decoder
from worker.encode import EventEncoder, kept_key
from worker.encoders import Encoder
from worker.health import Health
from worker.metrics import Metrics
from worker.produce import Outbox, Output
from worker.records import Categorized, DeadLetter, SourceRef, Upload
from worker.review import review_reason
from worker.rollout import ModelWatcher
from worker.settings import Settings

log = structlog.get_logger(__name__)
IDLE_POLL_S = 0.2
REGISTRY_RETRY_S = 5.0  # a message the schema registry could not help decode is fetched again after this
LAG_INTERVAL_S = 5.0


class Worker:
    def __init__(self, settings: Settings, encoder: Encoder, models: ModelWatcher, cache: EmbeddingCache,
                 metrics: Metrics, health: Health) -> None:
        self._settings = settings
        self._encoder = encoder
        self._models = models
        self._cache = cache
        self.metrics = metrics
        self.health = health
        self._codec = codec = make_codec(settings)
        # a hot swap never changes the text recipe (rollout.check_same_text_recipe)
        max_chars = settings.text_budget(models.current.text_budget).max_chars
        self._decoder = Decoder(codec, max_chars, models.current.embed_views)
        self._events = EventEncoder(codec, settings.worker_output_topic, settings.worker_dlq_topic,
                                    settings.worker_review_topic)
        self._batcher = Batcher(settings.worker_batch_max_size, settings.worker_batch_max_chars,
                                settings.worker_batch_max_wait_ms / 1000)
        self._offsets = OffsetTracker()
        self._letters = LettersInOrder(self._offsets)  # exactly-once only
        self._outbox = Outbox(settings, on_acked=self._acked, encoder=self._events,
                              on_dead_lettered=metrics.dead_lettered, on_review_dropped=metrics.review_copy_dropped)
        self._inbox = Inbox(settings, on_assign=self._assigned, on_revoke=self._revoked,
                            on_committed=self._offsets.mark_committed, on_commit_failed=metrics.commit_failed)
        self._exactly_once = self._outbox.transactional
        # offsets travel inside the transactions in exactly-once mode
        self._committer = Committer(self._offsets, self._inbox, settings.worker_commit_interval_ms / 1000,
                                    enabled=not self._exactly_once, on_failed=metrics.commit_failed)
        self._encoding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder")
        self._pending: StartedBatch | None = None  # the batch the encoder is working on
        self._in_transaction = False
        self._stop = threading.Event()
        self._next_lag = 0.0

    @property
    def model_version(self) -> str:
        return self._models.current.version

    @property
    def video_namespace(self) -> str:
        return self._cache.namespace

    @property
    def model_labels(self) -> tuple[str, ...]:
        return self._models.current.labels

    # --- lifecycle ------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Safe from a signal handler or another thread: the loop ends after its current step."""
        self._stop.set()

    def run(self) -> None:
        self.metrics.model_info(self._models.current.version, self._encoder.identity.short)
        self.health.set_model_loaded(True)
        try:
            # before joining the group (no partition: not ready meanwhile)
            prepare_output_schemas(self._codec, self._settings, self._stop, REGISTRY_RETRY_S,
                                   self._registry_unavailable)
            if self._exactly_once:  # alive meanwhile (waiting for the broker); not ready: no partitions
                self._outbox.init_transactions(self._stop, on_waiting=self.health.progressed)
            if not self._stop.is_set():
                self._inbox.subscribe()
                log.info("worker_started", topic=self._settings.worker_input_topic, model=self._models.current.version,
                         group=self._settings.worker_group_id, delivery=self._settings.worker_delivery.value)
            while not self._stop.is_set():
                self.step()
        finally:
            handed_back = 0
            try:
                handed_back = self._drain(self._inbox.assignment)
            finally:  # even when the drain fails: leave the group, release the clients
                self._inbox.close()
                self._outbox.close()
                self._encoding.shutdown()
                log.info("worker_stopped", handed_back=handed_back)

    def _registry_unavailable(self) -> None:
        self.metrics.held_for_registry()
        self.health.progressed()  # alive: waiting for the registry

    def step(self) -> None:
        """One turn: fetch (rebalances run inside `Inbox.poll`: `_revoked` drains there), decode into batches,
        advance the batch pipeline, then the periodic work: transaction, delivery reports, flow control, commits."""
        room = self._settings.worker_max_in_flight - self._offsets.in_flight()
        limit = max(1, min(self._settings.worker_batch_max_size, room))
        if self._pending is None:
            due_in = self._batcher.seconds_until_due(time.monotonic())
            messages = self._inbox.poll(limit, IDLE_POLL_S if due_in is None else min(due_in, IDLE_POLL_S))
        else:  # the encoder is busy: decode what is already fetched, else wait for the encoder
            messages = self._inbox.poll(limit, 0)
            if not messages and self._pending is not None:  # None: a revoke inside the poll drained it
                self._pending.embedding.wait(IDLE_POLL_S)
        self.health.set_broker_ok(self._inbox.broker_reachable())
        if messages:
            self._accept(messages)
        self._advance()
        now = time.monotonic()
        self._end_transaction()
        self._outbox.poll(0)
        self._flow_control()
        self._inbox.release_held()
        self._committer.maybe_commit(now)
        self._maybe_swap_model(now)
        self._maybe_report_lag(now)
        self.health.progressed()

    def _advance(self) -> None:
        """Finish the batch in the encoder once it is embedded, the next due batch started first. It loops
        because a batch served wholly from the cache is embedded as soon as it starts: the batch due after
        it can then be started, and that one finished, in the same step."""
        while True:
            finished = self._pending
            if finished is not None and not finished.embedding.done():
                return
            # the finished batch's embeddings are stored before the next batch's cache lookup
            embedded = finished.embedding.result() if finished is not None else None
            self._pending = self._start(self._batcher.take()) if self._batcher.is_due(time.monotonic()) else None
            if finished is not None and embedded is not None:
                self._send_results(label_batch(finished, embedded))
            if self._pending is None:
                return

    def _drain(self, partitions: Collection[TopicPartition]) -> int:
        """On stop and revoke: finish the batch in the encoder, hand back the uploads of `partitions` that
        wait for it (no output, offset not committed: their next reader takes them; docs/reliability.md,
        "Revoke and stop"), wait for acknowledgments, commit; how many were handed back. After OutputFailed
        only what was acknowledged is committed (exactly-once: nothing): sending more would fail the same way."""
        if self._pending is not None and not self._outbox.failed:
            started, self._pending = self._pending, None
            self._send_results(label_batch(started, started.embedding.result()))
        handed_back = self._batcher.discard(set(partitions))
        self.metrics.handed_back(handed_back)
        self._letters.forget(partitions)
        self._end_transaction()
        left = self._outbox.flush() if not self._outbox.failed else 0
        if left:
            log.error("outputs_unacknowledged_at_drain", count=left)
        self._committer.commit(asynchronous=False)
        return handed_back

    # --- partitions ---------------------------------------------------------------------------
    def _assigned(self, partitions: list[TopicPartition]) -> None:
        self.health.set_assigned(len(self._inbox.assignment))
        log.info("partitions_assigned", partitions=sorted(partitions))

    def _revoked(self, partitions: list[TopicPartition]) -> None:
        """Called from inside `Inbox.poll`, in the middle of `step`: drain and commit first."""
        started = time.monotonic()
        handed_back = self._drain(partitions)
        self._offsets.forget(partitions)
        self.metrics.forget_partitions(partitions)
        self.health.set_assigned(len(self._inbox.assignment) - len(partitions))
        log.info("partitions_revoked", partitions=sorted(partitions), handed_back=handed_back,
                 drain_ms=round((time.monotonic() - started) * 1000))

    # --- the steps ------------------------------------------------------------------------------
    def _accept(self, messages: Sequence[Message]) -> None:
        held: set[TopicPartition] = set()
        for message in messages:
            source = source_of(message)
            partition = (source.topic, source.partition)
            if partition in held:
                continue  # fetched again from the held message on
            try:
                decoded = self._decoder.decode(message.key(), message.value(), message.headers(), source)
            except RegistryUnavailable as error:
                held.add(partition)
                self._inbox.hold(partition, source.offset, REGISTRY_RETRY_S, str(error))
                self.metrics.held_for_registry()
                continue
            self.metrics.consumed(1)
            self._offsets.track(partition, source.offset)
            if isinstance(decoded, Upload):
                self._batcher.add(decoded)
            elif self._exactly_once:
                self._letters.add(decoded)
            else:
                self._dead_letter(decoded)
        self._send_due_letters()

    def _send_for_review(self, upload: Upload, result: Categorized, key: bytes) -> None:
        settings = self._settings
        reason = review_reason(result.video_id, result.confidence, settings.worker_low_confidence,
                               settings.worker_review_sample_rate)
        if reason:
            value, headers = self._events.review_request(upload.event, result, reason)
            self._send(Output(settings.worker_review_topic, key, value, headers, None))
            self.metrics.sent_for_review(reason)

    def _send_due_letters(self) -> None:
        for letter in self._letters.due():
            self._dead_letter(letter)

    def _dead_letter(self, letter: DeadLetter) -> None:
        value, headers = self._events.dead_letter(letter)
        self._send(Output(self._settings.worker_dlq_topic, kept_key(letter.key), value, headers, letter.source))
        self.metrics.dead_lettered(letter.error_type)
        log.debug("dead_letter", reason=letter.error_type, source=letter.source)

    def _start(self, batch: list[Upload]) -> StartedBatch:
        return start_batch(batch, self._encoder, self._cache, self._models.current, self._encoding)

    def _send_results(self, outcome: BatchOutcome) -> None:
        for upload, result in zip(outcome.uploads, outcome.results, strict=True):
            value, headers = self._events.categorized(result)
            key = result.video_id.encode()
            self._send(Output(self._settings.worker_output_topic, key, value, headers, result.source))
            if self._settings.worker_review_topic:
                self._send_for_review(upload, result, key)
        self.metrics.batch_sent(outcome)
        embedded = outcome.embedded
        log.info("batch", size=len(outcome.results), cache_hits=embedded.hits, encoded=embedded.misses,
                 encode_ms=round(embedded.encode_seconds * 1000, 1), total_ms=round(outcome.seconds * 1000, 1),
                 in_flight=self._offsets.in_flight())
        self._send_due_letters()

    def _send(self, output: Output) -> None:
        if self._exactly_once:
            if not self._in_transaction:
                self._outbox.begin()
                self._in_transaction = True
            if output.source is not None:  # in a transaction, sent is as good as acknowledged
                self._acked(output.source)
        self._outbox.send(output)

    def _acked(self, source: SourceRef) -> None:
        self._offsets.done((source.topic, source.partition), source.offset)

    # --- commit, flow control, housekeeping -------------------------------------------------------
    def _end_transaction(self) -> None:
        if not self._in_transaction or self._outbox.failed:  # failed: the outbox aborted it
            return
        positions = self._offsets.uncommitted()
        self._outbox.commit_with_offsets(positions, self._inbox.group_metadata())
        self._offsets.mark_committed(positions)
        self._in_transaction = False

    def _flow_control(self) -> None:
        in_flight = self._offsets.in_flight()
        self.metrics.in_flight(in_flight)
        self.metrics.paused(self._inbox.flow_control(in_flight, self._settings.worker_max_in_flight))

    def _maybe_swap_model(self, now: float) -> None:
        swapped = self._models.poll(now)
        if swapped is not None:
            self.metrics.model_info(swapped.version, self._encoder.identity.short)
            self.metrics.set_prior(swapped.labels, swapped.prior)

    def _maybe_report_lag(self, now: float) -> None:
        if now >= self._next_lag:
            self._next_lag = now + LAG_INTERVAL_S
            self.metrics.lags(self._inbox.lag())
