"""Avro on the wire, in two formats, behind one small codec interface.

- Plain Avro (default): the message value is the schemaless Avro binary of the record. The
  writer's schema is named by the Kafka header `avro.schema.fingerprint` (CRC-64-AVRO of its
  canonical form, hex). A message without the header was written with the current schema.
  Known writer schemas are the current `schemas/<Name>.avsc` and the older versions kept in
  `schemas/history/<Name>.*.avsc`, so producers can upgrade after workers (schema evolution by
  Avro resolution: added fields need defaults).
- Schema Registry (when `SCHEMA_REGISTRY_URL` is set): Confluent framing (magic byte, 4-byte
  schema id, binary). Written with the id the registry gives our schema under the topic's subject
  (`<topic>-value`, registered on first use, or only looked up with `SCHEMA_REGISTRY_AUTO_REGISTER=false`;
  then cached), read with the writer schema the registry
  gives for the id (cached), resolved to ours like plain Avro. A registry that cannot answer raises
  `RegistryUnavailable` on both sides; the worker resolves the ids of everything it writes before it
  consumes (`output_schemas`, `Codec.prepare`), so writing never waits on the registry afterwards.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from worker.retry import until_done
from worker.settings import REPO_ROOT, Settings, WireFormat

SCHEMA_DIR = REPO_ROOT / "schemas"
FINGERPRINT_HEADER = "avro.schema.fingerprint"
Headers = list[tuple[str, bytes]]


class UnknownWriterSchema(ValueError):
    """The message names a writer schema this worker does not know."""


class RegistryUnavailable(RuntimeError):
    """The schema registry could not answer (unreachable, 5xx, credentials refused): not the message's
    fault, so the message is retried later, never dead-lettered."""


class SchemaNotRegistered(RuntimeError):
    """Lookup-only registry mode: one of the worker's own schemas is not registered under its subject."""


# Registry answers about our own schema that no retry mends (incompatible with the subject, invalid): a
# deployment error, raised as is.
SCHEMA_REFUSED_STATUSES = frozenset({409, 422})


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


def header_fingerprints(raw: bytes) -> tuple[str, ...]:
    """The fingerprints (`AvroSchema.fingerprint`: lower-case hex of the little-endian CRC-64-AVRO bytes) a
    fingerprint header may name. Ours is that hex; also taken: upper-case hex, the big-endian hex of a Java
    `Long.toHexString(SchemaNormalization.parsingFingerprint64(schema))` (leading zeros optional), and the
    8 raw bytes in Avro single-object encoding's (little-endian) order."""
    if len(raw) == 8:
        return (raw.hex(),)
    text = raw.decode("ascii", "replace").strip().lower()
    if not 0 < len(text) <= 16 or any(c not in "0123456789abcdef" for c in text):
        return (text,)
    padded = text.zfill(16)
    return padded, bytes.fromhex(padded)[::-1].hex()


def writer_schema_of(name: str, header: bytes) -> AvroSchema | None:
    """The version of schema `name` whose fingerprint a header names; None when no version has it."""
    versions = writer_schemas(name)
    return next((versions[f] for f in header_fingerprints(header) if f in versions), None)


def read_whole(payload: bytes, writer: Any, reader: AvroSchema) -> dict[str, Any]:
    """The record in `payload`, written with `writer`, resolved to `reader`; bytes left over are an error."""
    buf = io.BytesIO(payload)
    record = fastavro.schemaless_reader(buf, writer, reader.parsed)
    if buf.tell() != len(payload):
        raise ValueError(f"{len(payload) - buf.tell()} trailing bytes after the {reader.name} record")
    return record


class Codec(Protocol):
    def prepare(self, schema: AvroSchema, topic: str) -> None:
        """Make `dumps` of `schema` to `topic` independent of remote services (RegistryUnavailable if it cannot)."""

    def dumps(self, record: Mapping[str, Any], schema: AvroSchema, topic: str) -> tuple[bytes, Headers]: ...

    def loads(self, value: bytes, headers: Headers | None, schema: AvroSchema, topic: str) -> dict[str, Any]: ...


class PlainAvroCodec:
    def prepare(self, schema: AvroSchema, topic: str) -> None:
        """Nothing to resolve: the fingerprint travels in a header."""

    def dumps(self, record: Mapping[str, Any], schema: AvroSchema, topic: str) -> tuple[bytes, Headers]:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema.parsed, record)
        return buf.getvalue(), [(FINGERPRINT_HEADER, schema.fingerprint.encode())]

    def loads(self, value: bytes, headers: Headers | None, schema: AvroSchema, topic: str) -> dict[str, Any]:
        writer = schema
        for key, raw in headers or ():
            if key == FINGERPRINT_HEADER:
                found = writer_schema_of(schema.name, raw)
                if found is None:
                    raise UnknownWriterSchema(f"unknown writer schema fingerprint {raw[:32]!r} for {schema.name}")
                writer = found
        return read_whole(value, writer.parsed, schema)


class RegistryCodec:
    """Confluent Schema Registry framing, written and read by hand around the registry client's calls, so that
    a registry failure (RegistryUnavailable) is told apart from everything else."""

    def __init__(self, url: str, basic_auth: str = "", auto_register: bool = True) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self._auto_register = auto_register
        conf: dict[str, Any] = {"url": url}
        if basic_auth:
            conf["basic.auth.user.info"] = basic_auth
        self._client = SchemaRegistryClient.new_client(conf)  # `mock://` URLs give the in-memory test registry
        self._ids: dict[tuple[str, str], int] = {}  # (schema name, subject) -> the id our schema has there
        self._writers: dict[int, Any] = {}  # schema id -> parsed writer schema

    def prepare(self, schema: AvroSchema, topic: str) -> None:
        """Register (or look up) `schema` under the topic's subject now (once): `dumps` then never asks."""
        self._schema_id(schema, topic)

    def dumps(self, record: Mapping[str, Any], schema: AvroSchema, topic: str) -> tuple[bytes, Headers]:
        """Magic byte 0, the big-endian schema id, the Avro binary: what confluent's AvroSerializer writes."""
        buf = io.BytesIO()
        buf.write(b"\x00" + self._schema_id(schema, topic).to_bytes(4, "big"))
        fastavro.schemaless_writer(buf, schema.parsed, dict(record))
        return buf.getvalue(), []

    def _schema_id(self, schema: AvroSchema, topic: str) -> int:
        subject = f"{topic}-value"  # confluent's default TopicNameStrategy
        if (schema.name, subject) not in self._ids:
            self._ids[(schema.name, subject)] = self._ask_id(schema, subject)
        return self._ids[(schema.name, subject)]

    def _ask_id(self, schema: AvroSchema, subject: str) -> int:
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        # the text as confluent's AvroSerializer registered it, so that the id stays the same
        text = Schema(schema.text.strip(), "AVRO")
        doing = "registering" if self._auto_register else "looking up"
        try:
            if self._auto_register:
                return self._client.register_schema(subject, text)
            return self._client.lookup_schema(subject, text).schema_id
        except SchemaRegistryError as error:
            if error.http_status_code == 404 and not self._auto_register:
                raise SchemaNotRegistered(
                    f"{schema.name} (schemas/{schema.name}.avsc, as written) is not registered under {subject}, and "
                    "SCHEMA_REGISTRY_AUTO_REGISTER=false: register it there, or let the worker do it") from error
            if error.http_status_code in SCHEMA_REFUSED_STATUSES:
                raise
            hint = " (no write access? SCHEMA_REGISTRY_AUTO_REGISTER=false only looks schemas up)" if (
                error.http_status_code == 403 and self._auto_register) else ""
            raise RegistryUnavailable(f"schema registry, {doing} {subject}: {error}{hint}") from error
        except Exception as error:  # noqa: BLE001 - transport errors of the registry's HTTP client
            raise RegistryUnavailable(f"schema registry, {doing} {subject}: {type(error).__name__}: {error}") from error

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


def output_schemas(settings: Settings) -> list[tuple[AvroSchema, str]]:
    """Every schema the worker writes, with the topic it writes it to (as `worker.encode.EventEncoder` does)."""
    outputs = [(load_schema("VideoCategorized"), settings.worker_output_topic),
               (load_schema("DeadLetter"), settings.worker_dlq_topic)]
    if settings.worker_review_topic:
        outputs.append((load_schema("ReviewRequest"), settings.worker_review_topic))
    return outputs


def prepare_output_schemas(codec: Codec, settings: Settings, stop: threading.Event, retry_s: float,
                           on_unavailable: Callable[[], None]) -> None:
    """The registry's ids for every schema the worker writes, asked until known or `stop` is set: writing
    then never waits on the registry, so an input judged without it (a tombstone, unframed bytes) meets no
    outage on its way out. `on_unavailable` hears each failed try (metrics, liveness)."""

    def attempt() -> str | None:
        try:
            for schema, topic in output_schemas(settings):
                codec.prepare(schema, topic)
        except RegistryUnavailable as error:
            return str(error)
        return None

    until_done(attempt, stop, retry_s, on_unavailable, "output_schemas_unresolved")


def make_codec(settings: Settings) -> Codec:
    if settings.wire_format() is WireFormat.REGISTRY:
        return RegistryCodec(settings.schema_registry_url, settings.schema_registry_basic_auth.get_secret_value(),
                             settings.schema_registry_auto_register)
    return PlainAvroCodec()
