"""The chain package's errors: one base, one subclass per way a chain can be refused.

Callers (the master's command line, the replica's backend) catch ``ChainError`` to
report a bad input without a traceback, and the subclasses carry typed attributes so
that a message can name the offending block or field instead of re-parsing text.
"""

from __future__ import annotations


class ChainError(Exception):
    """Base of every error this package raises on purpose."""


class ChainConfigMissing(ChainError):
    """The database holds no chain configuration (not a chain database, or empty)."""


class InvalidChainConfig(ChainError):
    """A stored or built chain configuration is malformed or inconsistent."""


class InvalidGenesis(ChainError):
    """A genesis.json cannot be parsed or describes an impossible genesis."""


class UnsupportedChain(ChainError):
    """The chain is valid for geth but needs a rule py-evm 0.12 cannot express.

    Refusing loudly beats importing a chain with silently different rules.
    """


class ChainMismatch(ChainError):
    """The database already holds a different chain than the one being imported."""


class InvalidBlock(ChainError):
    """A block could not be decoded or failed validation during import.

    Attributes:
        number: the block number (or its position in the file if undecodable).
        block_hash: the hash of the block's header, when it could be decoded.
        reason: py-evm's (or the decoder's) explanation.
    """

    def __init__(self, number: int, block_hash: bytes | None, reason: str) -> None:
        self.number = number
        self.block_hash = block_hash
        self.reason = reason
        shown = f" (0x{block_hash.hex()})" if block_hash is not None else ""
        super().__init__(f"invalid block {number}{shown}: {reason}")


class InvalidTransaction(ChainError):
    """A raw transaction cannot be decoded or is not valid for this chain.

    Attributes:
        reason: why, in words an RPC error message can carry.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class KzgWorkerUnavailable(ChainError):
    """The process that checks and converts blob sidecars cannot take this one now (it holds as many
    as it may, or it died and restarts on the next call); the client may retry. The message is the
    reason, as a phrase."""
