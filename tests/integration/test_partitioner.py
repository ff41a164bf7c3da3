"""Outputs keyed by video id land on the partition a Java client would choose (murmur2), not librdkafka's CRC32."""

from collections.abc import Callable

from confluent_kafka import Producer

from worker.produce import idempotent_producer_config
from worker.settings import Settings
from worker.topics import ensure_topics

PARTITIONS = 6


def java_partition(key: bytes, partitions: int) -> int:
    """org.apache.kafka.common.utils.Utils.murmur2, then toPositive(hash) % partitions (Java's default)."""
    m, seed, mask = 0x5BD1E995, 0x9747B28C, 0xFFFFFFFF
    h = (seed ^ len(key)) & mask
    whole = len(key) // 4 * 4
    for i in range(0, whole, 4):
        k = (int.from_bytes(key[i:i + 4], "little") * m) & mask
        k = ((k ^ (k >> 24)) * m) & mask
        h = ((h * m) & mask) ^ k
    tail = key[whole:]
    for i in reversed(range(len(tail))):
        h ^= tail[i] << (8 * i)
    if tail:
        h = (h * m) & mask
    h = ((h ^ (h >> 13)) * m) & mask
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def test_a_video_id_lands_where_a_java_producer_puts_it(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    topic = settings.worker_output_topic
    ensure_topics(settings, [topic], partitions=PARTITIONS)
    landed: dict[bytes, int] = {}
    producer = Producer(idempotent_producer_config(settings))
    keys = [f"video-{i}".encode() for i in range(40)] + ["vidéo-ü".encode(), b"x", b"ab", b"abc"]
    for key in keys:
        producer.produce(topic, b"{}", key, on_delivery=lambda _e, m: landed.__setitem__(m.key(), m.partition()))
    assert producer.flush(30) == 0
    assert landed == {key: java_partition(key, PARTITIONS) for key in keys}
