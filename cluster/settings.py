"""One settings model, read from ``ETHERCATTLE_*`` environment variables.

Every process (master, replica, emitter, tools) reads the same model; tests
build ``Settings(...)`` directly. ``load_settings`` turns pydantic's errors into
one message that names each offending environment variable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
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
    cdc_retention: float = Field(default=7 * 24 * 3600.0, gt=0, description="retention.ms of the CDC topic when `ethercattle topics` creates it, seconds: how old a snapshot may be and still catch up")
    transaction_retention: float = Field(default=24 * 3600.0, gt=0, description="retention.ms of the transaction and dead-letter topics when created, seconds (at least PENDING_TTL and FILTER_TIMEOUT)")

    apply_batch_messages: int = Field(default=256, ge=1, description="most Kafka messages the replica applies in one LevelDB write")
    apply_within_ms: int = Field(default=10, ge=1, description="longest a group waits, from its first message, for more (less once a fifth of it passes without one; an idle replica waits for a first message without a timer)")
    fetch_max_wait_ms: int = Field(default=20, ge=1, description="consumer fetch wait: bounds delivery latency on brokers that do not answer fetches early")

    heartbeat_interval: float = Field(default=1.0, gt=0, description="seconds between master heartbeats")
    max_lag: int = Field(default=50, ge=0, description="readiness: most Kafka messages a ready replica may be behind the log's end")
    max_heartbeat_age: float = Field(default=10.0, gt=0, description="readiness: oldest master heartbeat a ready replica accepts, in seconds")
    max_block_age: float | None = Field(default=None, gt=0, description="readiness: oldest head block a ready replica accepts, in seconds (unset: not checked)")
    max_broker_silence: float = Field(default=5.0, gt=0, description="readiness: longest time a ready replica goes without the broker answering its fetches, in seconds")
    web_bind: str = Field(default="127.0.0.1", min_length=1, description="address a replica's web server (JSON-RPC, health, status) listens on; 0.0.0.0 for every interface (containers). `faust worker --web-bind` overrides it; `--web-host` only names the advertised host")
    status_interval: float = Field(default=2.0, gt=0, description="seconds between a replica's rows in the cluster status table (and samples of the status page's chart)")
    status_peers: str = Field(default="", description="comma-separated NAME=URL of the other clusters' replicas (or per-cluster balancers that route by /healthz) whose status this replica's status page shows beside its own cluster's; several URLs under one name are tried together, the first that answers wins")
    status_peer_timeout: float = Field(default=1.0, gt=0, le=10, description="longest the status page waits for a peer cluster's answer, seconds; answers (and failures) are kept for STATUS_INTERVAL")

    rpc_max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, description="largest JSON-RPC request body")
    rpc_max_batch_requests: int = Field(default=1000, ge=1, description="most requests in one JSON-RPC batch")
    rpc_logs_max_block_range: int = Field(default=10_000, ge=1, description="most blocks one eth_getLogs may scan")
    rpc_logs_max_results: int = Field(default=10_000, ge=1, description="most logs one eth_getLogs may return")
    rpc_call_gas_cap: int = Field(default=50_000_000, ge=21_000, description="gas cap of eth_call / eth_estimateGas / eth_createAccessList")
    rpc_call_timeout: float = Field(default=5.0, gt=0, description="seconds one eth_call-like execution may run")
    rpc_request_timeout: float = Field(default=5.0, gt=0, description="seconds one JSON-RPC request may run, a whole batch included: executions stop there and the batch's remaining items answer -32002")
    rpc_request_gas_budget: int = Field(default=500_000_000, ge=21_000, description="gas all executions of one JSON-RPC request (a whole batch) may use together")
    rpc_max_in_flight: int = Field(default=16, ge=1, description="most HTTP JSON-RPC requests a replica handles at once; the next are answered at once with HTTP 503, Retry-After and JSON-RPC -32005")
    rpc_max_broker_waiting: int = Field(default=64, ge=1, description="most JSON-RPC calls waiting on the broker at once (filter calls, sent transactions, \"pending\" nonces), apart from RPC_MAX_IN_FLIGHT: reads keep every place while they wait; the next are answered -32005 at once")
    rpc_response_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0, description="most bytes of encoded JSON-RPC answers kept in memory, keyed by the head they were read at (0: no cache)")
    rpc_block_wait_blocks: int = Field(default=5, ge=0, description="a call naming a block at most this many past the head waits for it (0: never)")
    rpc_block_wait: float = Field(default=0.5, ge=0, description="longest a call naming a block just past the head waits for it, seconds")
    rpc_threads: int = Field(default=2, ge=1, le=64, description="threads running the costly JSON-RPC methods (eth_call and kin, eth_getLogs, filter log scans); more only contend for Python's GIL")
    rpc_broker_timeout: float = Field(default=5.0, gt=0, description="longest a JSON-RPC call waits for the broker to acknowledge its record (a filter installed, polled or removed; a sent transaction), seconds; then it answers -32000 and may be retried. At most RPC_MAX_BROKER_WAITING calls wait on the broker at once, apart from the requests in flight (reads keep every place); the next answer -32005 at once")

    filter_timeout: float = Field(default=300.0, gt=0, description="seconds a JSON-RPC filter lives without a poll (geth: 5 minutes); any replica tombstones it, waiting at most RPC_BROKER_TIMEOUT for each tombstone's acknowledgement (a timed-out one is tried again next round)")
    filter_max: int = Field(default=10_000, ge=1, description="most JSON-RPC filters installed in the cluster at once")
    filter_max_results: int = Field(default=10_000, ge=1, description="most hashes or logs one eth_getFilterChanges returns (the rest come with the next poll)")
    filter_sync_timeout: float = Field(default=2.0, gt=0, description="longest a filter call waits for this replica's filter view to catch up with the filter topic, seconds")
    rpc_cors_domains: str = Field(default="", description="comma-separated origins whose pages may call the JSON-RPC over HTTP (geth's --http.corsdomain; * for any; empty: no CORS headers)")
    ws_origins: str = Field(default="", description="comma-separated origins whose pages may open a JSON-RPC WebSocket (geth's --ws.origins; * for any; empty: http://localhost and this host); clients that send no Origin always may")
    ws_max_subscriptions: int = Field(default=100, ge=1, description="most eth_subscribe subscriptions on one WebSocket connection")
    ws_max_connections: int = Field(default=1000, ge=1, description="most WebSocket clients a replica serves at once; the next are refused with HTTP 503 before the upgrade")
    ws_send_queue: int = Field(default=1000, ge=1, description="most messages queued for one WebSocket client; a client that falls further behind is disconnected")

    snapshot_interval: float | None = Field(default=None, gt=0, description="seconds between a replica's scheduled snapshots (unset: none)")
    snapshot_dir: Path | None = Field(default=None, description="where snapshots are written and pruned (default DATADIR/snapshots; the cluster's replicas may share one)")
    snapshot_keep: int = Field(default=3, ge=1, description="scheduled snapshots keep the newest N of the cluster in SNAPSHOT_DIR")
    snapshot_format: Literal["dir", "tar.gz"] = Field(default="tar.gz", description="layout of scheduled snapshots")
    snapshot_retention_margin: float = Field(default=0.25, gt=0, lt=1, description="warn when the newest snapshot has less than this share of Kafka's retained log left before it falls out")

    emit_targets: str = Field(default="", description="comma-separated JSON-RPC URLs this worker's emitter forwards transactions to (empty: this worker runs no emitter)")
    emitter_name: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$", description="names the emitter: its consumer group and dedup table; workers with one name share the transaction topic's partitions")
    emit_timeout: float = Field(default=15.0, gt=0, description="seconds one eth_sendRawTransaction to a target may take before it counts as a transient failure")
    emit_retry_initial: float = Field(default=0.25, gt=0, description="first backoff after a transient failure, seconds (doubles each retry)")
    emit_retry_max: float = Field(default=10.0, gt=0, description="longest backoff between retries, seconds")
    emit_retry_for: float = Field(default=3600.0, gt=0, description="seconds a transaction is retried through transient failures before it goes to the dead-letter topic")
    emit_commit_interval: float = Field(default=1.0, ge=0, description="seconds between the emitter's offset commits (the dedup table covers what was sent since)")
    emit_dedup_ttl: float = Field(default=7 * 24 * 3600.0, gt=0, description="seconds the emitter's table remembers a forwarded transaction")
    pending_ttl: float = Field(default=900.0, gt=0, description="seconds a transaction stays in the pending view when no applied block includes it")
    pending_sync_timeout: float = Field(default=1.0, gt=0, description="longest a \"pending\" nonce waits for this replica's pending view to catch up with the transaction topic, seconds")

    broker_session_timeout: float = Field(default=6.0, gt=0, description="Kafka consumer group session timeout, seconds")
    broker_heartbeat_interval: float = Field(default=1.0, gt=0, description="Kafka consumer group heartbeat, seconds")
    broker_rebalance_timeout: float = Field(default=3.0, gt=0, description="Kafka group rebalance timeout, seconds (a join waits this long)")
    broker_max_poll_interval: float = Field(default=10.0, gt=0, description="Kafka max poll interval, seconds")

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        for url in value.split(","):
            if not url.startswith("kafka://") or ":" not in url[len("kafka://") :]:
                raise ValueError(f"{url!r} is not kafka://HOST:PORT")
        return value

    @field_validator("status_peers")
    @classmethod
    def _status_peers(cls, value: str) -> str:
        for entry in _entries(value):
            name, equals, url = entry.partition("=")
            if not equals or not _PEER_NAME.fullmatch(name.strip()):
                raise ValueError(f"{entry!r} is not NAME=URL (NAME a cluster's name)")
            if not _PEER_URL.fullmatch(url.strip()):
                raise ValueError(f"{url.strip()!r} is not an http(s)://HOST[:PORT][/PATH] URL without query or fragment")
        return value

    @model_validator(mode="after")
    def _peers_are_other_clusters(self) -> "Settings":
        """This cluster's own rows come from its status table; naming it as a peer would show it twice."""
        if self.cluster in self.status_peer_urls:
            raise ValueError(f"{ENV_PREFIX}STATUS_PEERS names this cluster ({self.cluster}): list only the other clusters")
        return self

    @model_validator(mode="after")
    def _transactions_outlive_their_readers(self) -> "Settings":
        """The pending view and the pending-transaction filters re-read the topic's last PENDING_TTL /
        FILTER_TIMEOUT seconds at start: a shorter retention would lose what they need."""
        longest = max(self.pending_ttl, self.filter_timeout)
        if self.transaction_retention < longest:
            raise ValueError(
                f"{ENV_PREFIX}TRANSACTION_RETENTION ({self.transaction_retention:g}s) is shorter than "
                f"{ENV_PREFIX}PENDING_TTL / {ENV_PREFIX}FILTER_TIMEOUT ({longest:g}s): raise it to at least {longest:g}")
        return self

    @property
    def chaindb(self) -> Path:
        return self.datadir / "chaindb"

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker list as aiokafka wants it (host:port, no scheme)."""
        return [url[len("kafka://") :] for url in self.broker.split(",")]

    @property
    def emit_target_list(self) -> list[str]:
        """The emitter's targets (empty: no emitter in this worker)."""
        return _entries(self.emit_targets)

    @property
    def status_peer_urls(self) -> dict[str, list[str]]:
        """The peer clusters of the status page, in the order named, each with its URLs (no trailing slash)."""
        peers: dict[str, list[str]] = {}
        for entry in _entries(self.status_peers):
            name, _, url = entry.partition("=")
            peers.setdefault(name.strip(), []).append(url.strip().rstrip("/"))
        return peers

    def require_replica_id(self) -> str:
        if self.replica_id is None:
            raise SettingsError(f"invalid settings: {ENV_PREFIX}REPLICA_ID is required for a replica (each replica its own)")
        return self.replica_id


_PEER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
"""A cluster's name, as ``Settings.cluster`` accepts it."""
_PEER_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(/[^\s?#,]*)?")
"""A peer's base URL: scheme, host, optional port and path; no credentials, query or fragment."""


def _entries(listing: str) -> list[str]:
    return [entry.strip() for entry in listing.split(",") if entry.strip()]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (plus overrides), or exit naming every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from None


def _describe(error: Any) -> str:
    """One validation error, named by its variable (a check across settings names them in its message)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    return f"{ENV_PREFIX}{'.'.join(str(p) for p in error['loc']).upper()}: {message}"
