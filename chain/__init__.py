"""Everything that turns a geth genesis + chain.rlp, or a dev configuration, into a
py-evm chain on any ``AtomicDatabaseAPI``.

Master and replicas share this package: the master imports or mines blocks with it,
replicas rebuild the same chain class from the configuration stored in their
replicated database (``open_chain``) to read headers, blocks, receipts and state.

Modules, one concern each:

- ``config``: ``ChainConfig``, its storage under ``b"chain-config"``, ``chain_class``,
  ``open_chain``.
- ``genesis``: geth genesis.json → genesis header parameters and state.
- ``forks``: geth fork rules (blocks, TTD, timestamps) → py-evm's block schedule.
- ``forkid``: EIP-2124 fork ids (for ``eth_config``).
- ``osaka``: the Osaka VM and BPO forks on py-evm's Prague VM (py-evm 0.12 ends at Prague).
- ``importer``: chain.rlp → validated blocks in the database.
- ``dev``: the dev chain (Osaka, or an older fork), its funded accounts and ``DevMiner``.
- ``transactions``: raw transactions (all types, blob network form) → py-evm, checked.
- ``system_contracts``: the predeploys a Cancun/Prague genesis needs.
- ``difficulty``: total difficulty from py-evm's score.
- ``kzg``: one KZG trusted setup per process (and py-evm's precompile patched to use it).
- ``errors``: the ``ChainError`` hierarchy.
"""

from chain.config import CONFIG_KEY, ChainConfig, chain_class, open_chain, read_config, write_config
from chain.errors import (
    ChainConfigMissing,
    ChainError,
    ChainMismatch,
    InvalidBlock,
    InvalidChainConfig,
    InvalidGenesis,
    InvalidTransaction,
    UnsupportedChain,
)
__all__ = [
    "CONFIG_KEY",
    "ChainConfig",
    "ChainConfigMissing",
    "ChainError",
    "ChainMismatch",
    "InvalidBlock",
    "InvalidChainConfig",
    "InvalidGenesis",
    "InvalidTransaction",
    "UnsupportedChain",
    "chain_class",
    "open_chain",
    "read_config",
    "write_config",
]
