"""The baseline `bench/pipeline.py` compares the worker with: one message at a time, synchronously."""

from __future__ import annotations

import time
import uuid

from worker.records import VideoUploaded
from worker.sample import produce_uploads
from worker.settings import Settings
from worker.topics import ensure_topics


def naive_per_s(settings: Settings, uploads: list[VideoUploaded]) -> float:
    """One event at a time: consume, decode, embed (one call), classify, produce + flush, commit."""
    from confluent_kafka import Consumer, Producer

    from worker.avro import make_codec
    from worker.cache import EmbeddingCache
    from worker.categorize import categorize_batch
    from worker.classify import load_classifier
    from worker.consume import consumer_config, source_of
    from worker.decode import Decoder
    from worker.encode import EventEncoder
    from worker.encoders import load_encoder, muse_identity

    topic = f"naive-{uuid.uuid4().hex[:6]}"
    naive = settings.model_copy(update={"worker_input_topic": topic, "worker_group_id": topic})
    ensure_topics(naive, [topic], partitions=1)
    produce_uploads(naive, uploads)
    classifier = load_classifier(naive.worker_model_dir, muse_identity())
    budget = naive.text_budget(classifier.text_budget)
    encoder = load_encoder(naive, budget.max_tokens)
    codec = make_codec(naive)
    decoder = Decoder(codec, budget.max_chars, classifier.embed_views)
    events = EventEncoder(codec, topic + "-out", topic)
    cache = EmbeddingCache(None, encoder.identity.short, 60)
    consumer, producer = Consumer(consumer_config(naive)), Producer(naive.kafka_common())
    consumer.subscribe([topic])
    done, started = 0, None
    while done < len(uploads):
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        started = started or time.perf_counter()
        upload = decoder.decode(message.key(), message.value(), message.headers(), source_of(message))
        result = categorize_batch([upload], encoder, cache, classifier).results[0]
        producer.produce(topic + "-out", events.categorized(result)[0], result.video_id.encode())
        producer.flush()
        consumer.commit(message=message, asynchronous=False)
        done += 1
    consumer.close()
    return len(uploads) / (time.perf_counter() - started)
