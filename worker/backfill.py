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
costs reading more. A partition ends at its end, or at its first record stamped 5 minutes after
`until` (records out of order by less are still read).

What it does not do: a video whose key is there is left alone, so one uploaded again during the
outage keeps the vector of its earlier upload; a video uploaded twice inside the window keeps its
later upload's vector when both fall in one batch, its earlier one's otherwise.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import redis
import structlog
from confluent_kafka import Consumer, KafkaException, TopicPartition

from worker.avro import RegistryUnavailable, make_codec
from worker.cache import EmbeddingCache, connect
from worker.classify import IncompatibleModelError
from worker.consume import source_of
from worker.decode import Decoder
from worker.embed import embed_with_cache
from worker.encoders import Encoder
from worker.predict import Predictor, load_predictor
from worker.readback import PartitionsToTheEnd
from worker.records import Upload
from worker.settings import Settings

log = structlog.get_logger(__name__)
LATE_RECORDS_S = 300  # how far out of order a record's timestamp may be and still be read


class BackfillFailed(RuntimeError):
    """The run cannot go on (Redis, the schema registry, the broker or topic, the head): one line saying what.
    The batches before it were written."""


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
    """Backfill with what the settings name: the served head's text recipe, its encoder, Redis and the input
    topic. Every failure is a BackfillFailed with one line saying what."""
    client = connect(settings)  # lazy: nothing is sent before the first batch's lookup
    try:
        served = _load_served(settings, client)
        decoder = Decoder(make_codec(settings), served.text_max_chars, served.classifier.embed_views)
        return backfill(settings, since_ms, until_ms, served.encoder, served.cache, decoder, dry_run)
    except BackfillFailed:
        raise
    except (KafkaException, TimeoutError, RuntimeError) as error:  # a fetch error is a RuntimeError (readback)
        raise BackfillFailed(f"reading {settings.worker_input_topic}: {error}") from error
    finally:
        client.close()


def _load_served(settings: Settings, client: redis.Redis) -> Predictor:
    """The served head, its encoder and its cache, as the worker loads them. The encoder is loaded for a dry
    run too: its identity names the keys (a hub handle has its own)."""
    try:
        return load_predictor(settings.worker_model_dir, settings, client)
    except (IncompatibleModelError, OSError, ValueError) as error:
        raise BackfillFailed(f"the head at {settings.worker_model_dir} or its encoder cannot be loaded: {error}") \
            from error


def backfill(
    settings: Settings, since_ms: int, until_ms: int, encoder: Encoder, cache: EmbeddingCache, decoder: Decoder,
    dry_run: bool = False, idle_timeout_s: float = 30.0,
) -> BackfillSummary:
    summary = BackfillSummary(dry_run=dry_run)
    records = records_in_window(settings, since_ms, until_ms, decoder, idle_timeout_s)
    while chunk := list(itertools.islice(records, settings.worker_batch_max_size)):
        summary.read += len(chunk)
        batch = [upload for upload in chunk if upload is not None]
        summary.undecodable += len(chunk) - len(batch)
        missing = [u for u, there in zip(batch, _stored(cache, batch), strict=True) if not there]
        summary.already_stored += len(batch) - len(missing)
        summary.stored += len(missing)
        if missing and not dry_run:
            # a video twice in `missing`: both are written in order, so its later upload's vector is kept
            embedded = embed_with_cache([u.text for u in missing], [u.event.video_id for u in missing], encoder,
                                        cache, [u.embed_with for u in missing])
            if not embedded.stored:
                raise BackfillFailed(f"Redis did not take the embeddings of {len(missing)} uploads "
                                     "(log cache_unavailable); run again once it answers")
    if summary.read == 0:
        log.warning("backfill_window_empty", topic=settings.worker_input_topic,
                    hint="no record in the window: a window older than the topic's retention, or a wrong topic")
    return summary


def records_in_window(
    settings: Settings, since_ms: int, until_ms: int, decoder: Decoder, idle_timeout_s: float = 30.0,
) -> Iterator[Upload | None]:
    """Each input record with a timestamp in [since_ms, until_ms), decoded: an Upload, or None where the worker
    dead-letters it. A partition is read until its end, or its first record stamped `LATE_RECORDS_S` after
    `until_ms`: timestamps are the producers' and not in order within a partition."""
    topic = settings.worker_input_topic
    group = f"{settings.worker_group_id}-backfill-{uuid.uuid4().hex[:8]}"  # assigned, never joined or committed
    with PartitionsToTheEnd(settings, group, idle_timeout_s) as reader:
        for message in reader.messages(_window_starts(reader.consumer, topic, since_ms)):
            timestamp = message.timestamp()[1]
            if timestamp >= until_ms + LATE_RECORDS_S * 1000:
                reader.end(message.partition())
            if not since_ms <= timestamp < until_ms:
                continue
            try:
                decoded = decoder.decode(message.key(), message.value(), message.headers(), source_of(message))
            except RegistryUnavailable as error:
                raise BackfillFailed(f"the schema registry did not answer ({error}); run again once it does") \
                    from error
            yield decoded if isinstance(decoded, Upload) else None


def _window_starts(reader: Consumer, topic: str, since_ms: int) -> list[TopicPartition]:
    """Per partition, its first offset at or after `since_ms`; a partition with none (-1) is left out."""
    metadata = reader.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None:
        raise BackfillFailed(f"topic {topic}: {metadata.error.str()}")
    found = reader.offsets_for_times([TopicPartition(topic, p, since_ms) for p in metadata.partitions], timeout=10)
    if failed := [tp for tp in found if tp.error is not None]:
        raise BackfillFailed(f"topic {topic}: no offset for --since in partitions {[tp.partition for tp in failed]}: "
                             f"{failed[0].error.str()}")
    return [tp for tp in found if tp.offset >= 0]


def _stored(cache: EmbeddingCache, batch: list[Upload]) -> list[bool]:
    try:
        return cache.videos_present([u.event.video_id for u in batch])
    except Exception as error:  # noqa: BLE001 - any Redis failure ends the run with one message
        raise BackfillFailed(f"Redis did not answer ({type(error).__name__}); run again once it does") from error
