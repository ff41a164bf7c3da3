"""Create the worker's topics (input, output, dead letters, review) when they are missing."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from worker.settings import Settings


def ensure_topics(settings: Settings, topics: list[str], partitions: int = 4, replication: int = 1) -> None:
    admin = AdminClient(settings.kafka_common())
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [NewTopic(t, num_partitions=partitions, replication_factor=replication)
              for t in dict.fromkeys(topics) if t and t not in existing]
    if not wanted:
        return
    for topic, future in admin.create_topics(wanted, operation_timeout=10).items():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"could not create topic {topic}: {error}") from error


def worker_topics(settings: Settings) -> list[str]:
    return [settings.worker_input_topic, settings.worker_output_topic, settings.worker_dlq_topic,
            settings.worker_review_topic]
