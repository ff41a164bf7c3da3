"""Avro on the wire, in two formats, behind one small codec interface.

- Plain Avro (default): the message value is the schemaless Avro binary of the record. The
  writer's schema is named by the Kafka header `avro.schema.fingerprint` (CRC-64-AVRO of its
  canonical form, hex). A message without the header was written with the current schema.
  Known writer schemas are the current `schemas/<Name>.avsc` and the older versions kept in
  `schemas/history/<Name>.*.avsc`, so producers can upgrade after workers (schema evolution by
  Avro resolution: added fields need defaults).
- Schema Registry (when `SCHEMA_REGISTRY_URL` is set): Confluent framing (magic byte, 4-byte
  schema id, binary), written through confluent-kafka's serializer, read with the writer schema
  the registry gives for the id (cached), resolved to ours like plain Avro.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from worker.settings import REPO_ROOT, Settings, WireFormat

SCHEMA_DIR = REPO_ROOT / "schemas"
FINGERPRINT_HEADER = "avro.schema.fingerprint"
Headers = list[tuple[str, bytes]]


class UnknownWriterSchema(ValueError):
    """The message names a writer schema this worker does not know."""


class RegistryUnavailable(RuntimeError):
    """The schema registry could not say what a schema id is (unreachable, 5xx, refused): not the message's
    fault, so the message is retried later, never dead-lettered."""


@dataclass(frozen=True)
class AvroSchema:
    name: str  # the file name: schemas/<name>.avsc
    text: str
    parsed: Any
    fingerprint: str


def _read_schema(name: str, path_text: str) -> AvroSchema:
    parsed = parse_schema(json.loads(path_text))
    return AvroSchema(name, path_text, parsed, fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


@cache
def load_schema(name: str) -> AvroSchema:
    """The current schema `schemas/<name>.avsc`."""
    return _read_schema(name, (SCHEMA_DIR / f"{name}.avsc").read_text())


@cache
def writer_schemas(name: str) -> Mapping[str, AvroSchema]:
    """Every schema a producer may have written `name` with, by fingerprint."""
    schemas = [load_schema(name)]
    schemas += [_read_schema(name, p.read_text()) for p in sorted((SCHEMA_DIR / "history").glob(f"{name}.*.avsc"))]
    return {s.fingerprint: s for s in schemas}


def read_whole(payload: bytes, writer: Any, reader: AvroSchema) -> dict[str, Any]:
    """The record in `payload`, written with `writer`, resolved to `reader`; bytes left over are an error."""
    buf = io.BytesIO(payload)
    record = fastavro.schemaless_reader(buf, writer, reader.parsed)
    if buf.tell() != len(payload):
        raise ValueError(f"{len(payload) - buf.tell()} trailing bytes after the {reader.name} record")
    return record


class Codec(Protocol):
    def dumps(self, record: Mapping[str, Any], schema: AvroSchema, topic: str) -> tuple[bytes, Headers]: ...

    def loads(self, value: bytes, headers: Headers | None, schema: AvroSchema, topic: str) -> dict[str, Any]: ...


class PlainAvroCodec:
    def dumps(self, record: Mapping[str, Any], schema: AvroSchema, topic: str) -> tuple[bytes, Headers]:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema.parsed, record)
        return buf.getvalue(), [(FINGERPRINT_HEADER, schema.fingerprint.encode())]

    def loads(self, value: bytes, headers: Headers | None, schema: AvroSchema, topic: str) -> dict[str, Any]:
        writer = schema
        for key, raw in headers or ():
            if key == FINGERPRINT_HEADER:
                found = writer_schemas(schema.name).get(raw.decode("ascii", "replace"))
                if found is None:
                    raise UnknownWriterSchema(f"unknown writer schema fingerprint {raw[:32]!r} for {schema.name}")
                writer = found
        return read_whole(value, writer.parsed, schema)


class RegistryCodec:
    """Confluent Schema Registry framing; serializers are created per schema on first use."""

    def __init__(self, url: str, basic_auth: str = "") -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        conf: dict[str, Any] = {"url": url}
        if basic_auth:
            conf["basic.auth.user.info"] = basic_auth
        self._client = SchemaRegistryClient.new_client(conf)  # `mock://` URLs give the in-memory test registry
        self._serializers: dict[str, Any] = {}
        self._writers: dict[int, Any] = {}  # schema id -> parsed writer schema

    def dumps(self, record: Mapping[str, Any], schema: AvroSchema, topic: str) -> tuple[bytes, Headers]:
        from confluent_kafka.schema_registry.avro import AvroSerializer
        from confluent_kafka.serialization import MessageField, SerializationContext

        if schema.name not in self._serializers:
            self._serializers[schema.name] = AvroSerializer(self._client, schema.text)
        ctx = SerializationContext(topic, MessageField.VALUE)
        return self._serializers[schema.name](dict(record), ctx), []

    def loads(self, value: bytes, headers: Headers | None, schema: AvroSchema, topic: str) -> dict[str, Any]:
        """Confluent framing read by hand (magic byte 0, big-endian schema id, Avro binary), resolved to `schema`.

        The writer schema is fetched by id here, not inside confluent's deserializer, so that a registry
        failure (RegistryUnavailable) is told apart from a message that is not what it claims.
        """
        if len(value) < 5 or value[0] != 0:
            raise ValueError("not Schema Registry framing (magic byte 0 and a 4-byte schema id)")
        return read_whole(value[5:], self._writer_schema(int.from_bytes(value[1:5], "big")), schema)

    def _writer_schema(self, schema_id: int) -> Any:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        if schema_id not in self._writers:
            try:
                registered = self._client.get_schema(schema_id)
            except SchemaRegistryError as error:
                if error.http_status_code == 404:
                    raise UnknownWriterSchema(f"schema id {schema_id} is not in the registry") from error
                raise RegistryUnavailable(f"schema registry: {error}") from error
            except Exception as error:  # noqa: BLE001 - transport errors of the registry's HTTP client
                raise RegistryUnavailable(f"schema registry: {type(error).__name__}: {error}") from error
            if (registered.schema_type or "AVRO") != "AVRO":
                raise UnknownWriterSchema(f"schema id {schema_id} is a {registered.schema_type} schema, not Avro")
            self._writers[schema_id] = parse_schema(json.loads(registered.schema_str))
        return self._writers[schema_id]


def make_codec(settings: Settings) -> Codec:
    if settings.wire_format() is WireFormat.REGISTRY:
        return RegistryCodec(settings.schema_registry_url, settings.schema_registry_basic_auth.get_secret_value())
    return PlainAvroCodec()
