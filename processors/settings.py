"""The one settings object. Read once at a command's entry point and passed down.

Sources, highest priority first: explicit keyword arguments, environment variables
(prefix ``ORDERFLOW_``), systemd credentials (files named ``orderflow_<name>`` in
``$CREDENTIALS_DIRECTORY``, from a unit's ``LoadCredential=``), a TOML file (``ORDERFLOW_CONFIG``
or ``./orderflow.toml``), defaults. No other module reads ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from processors.errors import SettingsError

DAY_MS = 24 * 60 * 60 * 1000

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
ProcessingGuarantee = Literal["exactly-once", "at-least-once"]


class Settings(BaseSettings):
    """Everything orderflow can be configured with. Secrets are ``SecretStr`` and never printed."""

    model_config = SettingsConfigDict(
        env_prefix="ORDERFLOW_",
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    # --- connection -------------------------------------------------------------------------
    bootstrap_servers: str = Field("127.0.0.1:9092", min_length=1)
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-256"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None

    # --- topics -----------------------------------------------------------------------------
    topic_main: str = Field("orders.v1", min_length=1)
    topic_retry: str = Field("orders.retry", min_length=1)
    topic_dlq: str = Field("orders.dlq", min_length=1)
    # An empty name disables the outcome record.
    topic_processed: str = "orders.processed"
    # Compacted: one record per redriven dead letter (what makes a redrive a move, not a copy).
    topic_redriven: str = Field("orders.dlq.redriven", min_length=1)
    partitions: int = Field(3, ge=1, le=1000)
    replication_factor: int = Field(1, ge=1, le=10)
    retention_main_ms: int = Field(7 * DAY_MS, ge=-1)
    retention_retry_ms: int = Field(7 * DAY_MS, ge=7 * DAY_MS)
    retention_dlq_ms: int = Field(14 * DAY_MS, ge=14 * DAY_MS)
    retention_processed_ms: int = Field(7 * DAY_MS, ge=-1)

    # --- processors -------------------------------------------------------------------------
    group_main: str = Field("orderflow-main", min_length=1)
    group_retry: str = Field("orderflow-retry", min_length=1)
    processing_guarantee: ProcessingGuarantee = "exactly-once"
    commit_interval_s: float = Field(1.0, gt=0, le=60)
    # Stable per instance: a restarted instance fences its predecessor's open transaction at once.
    instance_id: str | None = None
    handler: str = Field("processors.handler:handle_order", pattern=r"^[\w.]+:[\w.]+$")
    max_attempts: int = Field(5, ge=1, le=100)
    backoff_initial_ms: int = Field(1000, ge=0)
    backoff_multiplier: float = Field(3.0, ge=1.0)
    backoff_max_ms: int = Field(5 * 60 * 1000, ge=0)
    backoff_jitter: float = Field(0.1, ge=0.0, le=1.0)
    retry_deadline_ms: int | None = Field(None, gt=0)
    random_failure_rate: float = Field(0.0, ge=0.0, le=1.0)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    # --- processors: classification, retry read-ahead, transactions (issue 3) ---
    # Exception classes (``package.module.Class``), comma-separated in the environment.
    permanent_errors: Annotated[list[str], NoDecode] = []
    transient_errors: Annotated[list[str], NoDecode] = []
    # Undeclared exception types: retried (category ``unknown``) or dead-lettered at once.
    retry_unknown_errors: bool = True
    # Records the retry processor holds in memory per partition while they wait to be due.
    retry_max_held: int = Field(500, ge=1, le=500)
    transaction_timeout_ms: int = Field(20_000, ge=1000, le=900_000)
    # Consumer group session: how long a crashed (kill -9) processor holds its partitions.
    session_timeout_ms: int = Field(10_000, ge=6000, le=300_000)
    # --- processors: liveness (issue 9) ---
    # The loop must go round (and make progress while records wait) at least this often.
    watchdog_timeout_s: float = Field(60.0, ge=5, le=3600)
    # In-process recoveries (new Kafka clients after a fenced or failed transaction) allowed
    # within RECOVERY_WINDOW_S before the process exits (4 if fenced: a twin instance).
    recovery_limit: int = Field(5, ge=0, le=100)
    metrics_host: str = "127.0.0.1"
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    state_dir: Path = Path(".orderflow/state")

    # --- producer ---------------------------------------------------------------------------
    event_source: str = Field("urn:orderflow:producer", min_length=1)

    @field_validator("permanent_errors", "transient_errors", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("ssl_ca_location")
    @classmethod
    def _ca_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such CA certificate file: {value}")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.security_protocol.startswith("SASL_") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_username and sasl_password "
                "(ORDERFLOW_SASL_USERNAME, ORDERFLOW_SASL_PASSWORD): no credentials given"
            )
        if self.backoff_max_ms < self.backoff_initial_ms:
            raise ValueError("backoff_max_ms must be at least backoff_initial_ms")
        names = [self.topic_main, self.topic_retry, self.topic_dlq, self.topic_redriven]
        if self.topic_processed:
            names.append(self.topic_processed)
        if len(set(names)) != len(names):
            raise ValueError("topic names must be distinct")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("ORDERFLOW_CONFIG", "orderflow.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        # systemd's LoadCredential= puts a unit's secrets there (a private, unswappable dir).
        credentials = os.environ.get("CREDENTIALS_DIRECTORY")
        if credentials and Path(credentials).is_dir():
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=credentials))
        if config_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def kafka_call_budget_s(self) -> float:
        """Timeout given to each blocking Kafka call of a processor (at least 10 s: a shorter
        transaction timeout must not cut a slow but healthy call short)."""
        return max(self.transaction_timeout_ms / 1000, 10.0)

    @property
    def shutdown_timeout_s(self) -> float:
        """After SIGTERM a processor is gone within this long, even if a Kafka call hangs."""
        return self.kafka_call_budget_s + 5.0

    @property
    def all_topics(self) -> list[str]:
        topics = [self.topic_main, self.topic_retry, self.topic_dlq]
        return [*topics, self.topic_processed] if self.topic_processed else topics


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning any validation failure into one readable ``SettingsError``."""
    config_file = os.environ.get("ORDERFLOW_CONFIG")
    if config_file and not Path(config_file).is_file():
        raise SettingsError(f"ORDERFLOW_CONFIG: no such file: {config_file}")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        key = f"ORDERFLOW_{location.upper()}" if location else "settings"
        problems.append(f"{key}: {message}")
    return "invalid setting " + "; ".join(problems)
