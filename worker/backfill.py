"""Backfill the recommender's embeddings: the uploads of a time window whose video key is missing.

While Redis was down (or left alone after a failure) the worker went on categorizing and said so
in each event (`embedding_stored: false`): those videos' keys were never written. Once Redis is
back,

    python -m worker backfill-embeddings --since 2026-11-22T09:30:00Z --until 2026-11-22T11:00:00Z

reads the input topic's records whose timestamp falls in [since, until), decodes each upload as the
worker does, and embeds (text cache first) those whose video key, named by the served head's text
recipe, is missing; a key that is there is left as it is. It writes Redis only: no output event,
no committed offset, so the workers' group is untouched, and a second run writes nothing.

The window is the records' time (the producer's, by default), not the time the worker scored
them: under consumer lag an outage hit older records, so start the window earlier by the lag of
the time (`videocat_consumer_lag`). Reading starts at the broker's offset for `since`
(`offsets_for_times`); a broker that cannot look a time up answers the first offset, which only
costs reading more. A partition ends at its end, or at its first record at or after `until`.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from confluent_kafka import Consumer, TopicPartition

from worker.avro import RegistryUnavailable
from worker.cache import EmbeddingCache
from worker.consume import source_of
from worker.decode import Decoder
from worker.embed import embed_with_cache
from worker.encoders import Encoder
from worker.readback import PartitionsToTheEnd
from worker.records import Upload
from worker.settings import Settings


class BackfillFailed(RuntimeError):
    """Redis or the schema registry did not answer, or Redis refused a write: the batches before were written."""


@dataclass
class BackfillSummary:
    read: int = 0  # input records in the window
    undecodable: int = 0  # records the worker dead-letters: nothing to embed
    already_stored: int = 0  # uploads whose video key was there
    stored: int = 0  # uploads embedded and written (due to be, in a dry run)
    dry_run: bool = False

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def run_backfill(settings: Settings, since_ms: int, until_ms: int, dry_run: bool = False) -> BackfillSummary:
    """Backfill with what the settings name: the served head's text recipe, its encoder (not loaded for a
    dry run), Redis and the input topic."""
    from worker.app import embedding_cache
    from worker.avro import make_codec
    from worker.cache import connect
    from worker.classify import load_classifier
    from worker.encoders import load_encoder, muse_identity

    head = load_classifier(settings.worker_model_dir, muse_identity())
    budget = settings.text_budget(head.text_budget)
    encoder = None if dry_run else load_encoder(settings, budget.max_tokens)
    client = connect(settings)
    try:
        cache = embedding_cache(settings, muse_identity(), head, client)
        decoder = Decoder(make_codec(settings), budget.max_chars, head.embed_views)
        return backfill(settings, since_ms, until_ms, encoder, cache, decoder, dry_run)
    finally:
        client.close()


def backfill(
    settings: Settings, since_ms: int, until_ms: int, encoder: Encoder | None, cache: EmbeddingCache,
    decoder: Decoder, dry_run: bool = False, idle_timeout_s: float = 30.0,
) -> BackfillSummary:
    """`encoder` may be None for a dry run only."""
    summary = BackfillSummary(dry_run=dry_run)
    uploads = uploads_in_window(settings, since_ms, until_ms, decoder, summary, idle_timeout_s)
    for batch in _batches(uploads, settings.worker_batch_max_size):
        missing = [u for u, there in zip(batch, _stored(cache, batch), strict=True) if not there]
        summary.already_stored += len(batch) - len(missing)
        summary.stored += len(missing)
        if missing and not dry_run:
            assert encoder is not None, "only a dry run goes without an encoder"
            embedded = embed_with_cache([u.text for u in missing], [u.event.video_id for u in missing], encoder,
                                        cache, [u.embed_with for u in missing])
            if not embedded.stored:
                raise BackfillFailed(f"Redis did not take the embeddings of {len(missing)} uploads "
                                     "(log cache_unavailable); run again once it answers")
    return summary


def uploads_in_window(
    settings: Settings, since_ms: int, until_ms: int, decoder: Decoder, summary: BackfillSummary,
    idle_timeout_s: float = 30.0,
) -> Iterator[Upload]:
    """The decodable uploads of the input topic with a record timestamp in [since_ms, until_ms)."""
    topic = settings.worker_input_topic
    group = f"{settings.worker_group_id}-backfill-{uuid.uuid4().hex[:8]}"  # assigned, never joined or committed
    with PartitionsToTheEnd(settings, group, idle_timeout_s) as reader:
        for message in reader.messages(_window_starts(reader.consumer, topic, since_ms)):
            timestamp = message.timestamp()[1]
            if timestamp >= until_ms:
                reader.end(message.partition())
                continue
            if timestamp < since_ms:
                continue
            summary.read += 1
            try:
                decoded = decoder.decode(message.key(), message.value(), message.headers(), source_of(message))
            except RegistryUnavailable as error:
                raise BackfillFailed(f"the schema registry did not answer ({error}); run again once it does") \
                    from error
            if isinstance(decoded, Upload):
                yield decoded
            else:
                summary.undecodable += 1


def _window_starts(reader: Consumer, topic: str, since_ms: int) -> list[TopicPartition]:
    """Per partition, its first offset at or after `since_ms`; a partition with none (-1) is left out."""
    partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
    found = reader.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], timeout=10)
    return [tp for tp in found if tp.offset >= 0]


def _batches(uploads: Iterable[Upload], size: int) -> Iterator[list[Upload]]:
    """Batches of `size` uploads; a video twice in one batch counts once, its later upload (as the worker
    last wrote its key)."""
    iterator = iter(uploads)
    while batch := list(itertools.islice(iterator, size)):
        yield list({u.event.video_id: u for u in batch}.values())


def _stored(cache: EmbeddingCache, batch: list[Upload]) -> list[bool]:
    try:
        return cache.videos_present([u.event.video_id for u in batch])
    except Exception as error:  # noqa: BLE001 - any Redis failure ends the run with one message
        raise BackfillFailed(f"Redis did not answer ({type(error).__name__}); run again once it does") from error
