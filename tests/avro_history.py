"""The older schema versions kept in schemas/history, as the codec knows them: what tests write old events with."""

from worker import avro
from worker.avro import AvroSchema, writer_schemas


def history_schema(name: str, version: int = 1) -> AvroSchema:
    """`schemas/history/<name>.v<version>.avsc`, as the codec knows it."""
    text = (avro.SCHEMA_DIR / "history" / f"{name}.v{version}.avsc").read_text()
    (schema,) = [s for s in writer_schemas(name).values() if s.text == text]
    return schema
