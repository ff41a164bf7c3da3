"""The older schema versions kept in schemas/history, as the codec knows them: what tests write old events with."""

from worker.avro import AvroSchema, load_schema, writer_schemas


def history_schema(name: str) -> AvroSchema:
    """The one older version of `name` kept in schemas/history."""
    (old,) = [s for s in writer_schemas(name).values() if s != load_schema(name)]
    return old
