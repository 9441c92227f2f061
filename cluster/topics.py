"""Every topic of a cluster: its name and its shape. No other module spells a topic name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    retention_seconds: float | None = None
    """Time-based retention (delete policy); None for compacted topics, which keep each key's last value."""

    def configs(self) -> dict[str, str]:
        """The topic configuration to create it with."""
        if self.compacted:
            return {"cleanup.policy": "compact"}
        if self.retention_seconds is None:
            return {}
        return {"cleanup.policy": "delete", "retention.ms": str(int(self.retention_seconds * 1000))}


@dataclass(frozen=True)
class TopicNames:
    """Topic names derive from the cluster name, so clusters on one broker never share a topic."""

    cluster: str

    @property
    def cdc(self) -> str:
        """The master's change log: one partition, because order is the contract."""
        return f"ethercattle.{self.cluster}.cdc"

    @property
    def transactions(self) -> str:
        return f"ethercattle.{self.cluster}.transactions"

    @property
    def dead_letters(self) -> str:
        return f"ethercattle.{self.cluster}.transactions.dead"

    def emitter_group(self, emitter_name: str) -> str:
        """The consumer group of the emitter named ``emitter_name`` (its workers share the tx topic)."""
        return f"ethercattle.{self.cluster}.emitter.{emitter_name}"

    def emitted(self, emitter_name: str) -> str:
        """The changelog of that emitter's table of forwarded transactions (compacted, one partition)."""
        return f"ethercattle.{self.cluster}.emitter.{emitter_name}.emitted"

    @property
    def replica_status(self) -> str:
        return f"ethercattle.{self.cluster}.replica-status"

    @property
    def filters(self) -> str:
        """The cluster's JSON-RPC filters (definition and cursor by filter id): compacted, one partition."""
        return f"ethercattle.{self.cluster}.filters"

    def emitter_specs(self, emitter_name: str) -> list[TopicSpec]:
        """The topics the emitter named ``emitter_name`` owns (its workers create them): its table's changelog."""
        return [TopicSpec(self.emitted(emitter_name), 1, compacted=True)]

    def specs(self, transaction_partitions: int, cdc_retention: float, transaction_retention: float) -> list[TopicSpec]:
        """The cluster's topics: partition counts, cleanup policy and retention (seconds)."""
        return [
            TopicSpec(self.cdc, 1, retention_seconds=cdc_retention),
            TopicSpec(self.transactions, transaction_partitions, retention_seconds=transaction_retention),
            TopicSpec(self.dead_letters, 1, retention_seconds=transaction_retention),
            TopicSpec(self.replica_status, 1, compacted=True),
            TopicSpec(self.filters, 1, compacted=True),
        ]
