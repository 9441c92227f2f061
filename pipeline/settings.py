"""One settings model, read from ``ETHERCATTLE_*`` environment variables.

Every process (master, replica, emitter, tools) reads the same model; tests
build ``Settings(...)`` directly. ``load_settings`` turns pydantic's errors into
one message that names each offending environment variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ETHERCATTLE_"


class SettingsError(SystemExit):
    """Invalid or missing settings: exits the process with a message naming the variables."""


class Settings(BaseSettings):
    """Configuration of an ethercattle process."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    broker: str = Field(description="Kafka bootstrap servers, e.g. kafka://127.0.0.1:9092 (comma-separated for several)")
    cluster: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$", description="names the cluster; topic names derive from it")
    datadir: Path = Field(description="where this node keeps its data; the chain database is DATADIR/chaindb")
    secret: str = Field(min_length=16, description="shared cluster secret that authenticates log records (>= 16 characters)")
    replica_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
        description="names this replica; required for replicas, each replica its own",
    )
    master_id: str = Field(default="master", description="names the master in the records it writes")

    max_message_bytes: int = Field(default=1_000_000, ge=4096, description="largest Kafka message the master produces; larger records are split into parts")
    producer_idempotence: bool = Field(default=False, description="use Kafka's idempotent producer (Apache Kafka: true; the local Tansu broker: false)")
    topic_replication: int = Field(default=1, ge=1, description="replication factor of the topics `ethercattle topics` creates")
    transaction_partitions: int = Field(default=4, ge=1, description="partitions of the transaction topic")

    apply_batch_messages: int = Field(default=256, ge=1, description="most Kafka messages the replica applies in one LevelDB write")
    apply_within_ms: int = Field(default=10, ge=1, description="how long the apply agent waits to fill a group")
    fetch_max_wait_ms: int = Field(default=20, ge=1, description="consumer fetch wait: bounds delivery latency on brokers that do not answer fetches early")

    heartbeat_interval: float = Field(default=1.0, gt=0, description="seconds between master heartbeats")
    max_lag: int = Field(default=50, ge=0, description="readiness: most Kafka messages a ready replica may be behind the log's end")
    max_heartbeat_age: float = Field(default=10.0, gt=0, description="readiness: oldest master heartbeat a ready replica accepts, in seconds")
    max_block_age: float | None = Field(default=None, gt=0, description="readiness: oldest head block a ready replica accepts, in seconds (unset: not checked)")

    broker_session_timeout: float = Field(default=6.0, gt=0)
    broker_heartbeat_interval: float = Field(default=1.0, gt=0)
    broker_rebalance_timeout: float = Field(default=3.0, gt=0)
    broker_max_poll_interval: float = Field(default=10.0, gt=0)

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        for url in value.split(","):
            if not url.startswith("kafka://") or ":" not in url[len("kafka://") :]:
                raise ValueError(f"{url!r} is not kafka://HOST:PORT")
        return value

    @property
    def chaindb(self) -> Path:
        return self.datadir / "chaindb"

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker list as aiokafka wants it (host:port, no scheme)."""
        return [url[len("kafka://") :] for url in self.broker.split(",")]

    def require_replica_id(self) -> str:
        if self.replica_id is None:
            raise SettingsError(f"invalid settings: {ENV_PREFIX}REPLICA_ID is required for a replica (each replica its own)")
        return self.replica_id


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (plus overrides), or exit naming every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'.'.join(str(p) for p in error['loc']).upper()}: {error['msg']}" for error in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None
