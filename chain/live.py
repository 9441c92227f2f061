"""Chain logic for following a live chain: genesis against the upstream's, one verified block, reorgs.

A followed block is executed with py-evm on a ``BlockBuffer`` (an in-memory
overlay over the chain database) and its computed header compared with the one the
upstream announced; only when they are equal do the buffered writes go down, in one
atomic batch. So a block that does not reproduce writes nothing, and a crash at any
instant leaves whole blocks. A reorg is the same: the canonical chain is rewound to
the fork point and the new branch imported in one buffer, so every reader (replicas
included) sees the old head, then the new one, never the rewound chain in between.

py-evm picks forks by block number, while a live chain activates the merge by total
difficulty and later forks by timestamp; ``config_for_block`` extends the stored
schedule as each block arrives, as ``chain.forks`` does for a whole file, and
``config_rewound_to`` takes back what the blocks a reorg drops had activated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import rlp
from eth._utils.db import apply_state_dict
from eth.abc import AtomicDatabaseAPI, BlockAPI, BlockHeaderAPI
from eth.chains.base import Chain
from eth.constants import BLANK_ROOT_HASH
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.db.schema import SchemaV1
from eth.rlp.sedes import chain_gaps
from eth.exceptions import PyEVMError
from eth.rlp.headers import BlockHeader
from eth.typing import AccountState, ChainGaps
from eth.vm.chain_context import ChainContext
from eth_keys.exceptions import BadSignature
from eth_typing import BlockNumber, Hash32
from eth_utils import ValidationError
from rlp.exceptions import RLPException

from chain.config import ChainConfig, chain_class, newest_time_fork, write_config
from chain.errors import ChainError, ChainMismatch, InvalidBlock, UnsupportedChain
from chain.forks import MERGE_FORK, BlockSummary, chain_config_for
from chain.genesis import GenesisSpec, genesis_params
from storage.overlay import OverlayDB

_BLOCK_ERRORS = (ValidationError, PyEVMError, RLPException, BadSignature)

COMPARED_FIELDS: tuple[str, ...] = (
    "state_root",
    "receipt_root",
    "bloom",
    "gas_used",
    "transaction_root",
    "withdrawals_root",
    "requests_hash",
    "blob_gas_used",
    "excess_blob_gas",
    "base_fee_per_gas",
)
"""Computed fields compared with the upstream's, most telling first; the hash covers the rest."""


class HeaderMismatch(ChainError):
    """The header the master computed differs from the upstream's: following stops.

    Attributes:
        number: the block number.
        field: the first differing header field (py-evm's name), or ``hash``.
        ours: the value the master computed.
        theirs: the value the upstream announced.
    """

    def __init__(self, number: int, field: str, ours: Any, theirs: Any) -> None:
        self.number, self.field, self.ours, self.theirs = number, field, ours, theirs
        super().__init__(f"block {number}: {field} computed {_shown(ours)}, upstream says {_shown(theirs)}")


def _shown(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


class BlockBuffer(OverlayDB):
    """Writes of one step (a block, or a reorg) held in memory until ``flush``."""

    def flush(self) -> int:
        """Write everything buffered to the wrapped database in one atomic batch; returns the key count."""
        changes, self._changes = self._changes, {}
        wrapped = self.wrapped
        assert isinstance(wrapped, AtomicDatabaseAPI)
        with wrapped.atomic_batch() as batch:
            for key, value in changes.items():
                if value is None:
                    if key in wrapped:
                        del batch[key]
                else:
                    batch[key] = value
        return len(changes)


@dataclass(frozen=True)
class GenesisCheck:
    """How the upstream's block 0 relates to the genesis.json's."""

    header: BlockHeaderAPI
    """The genesis header to store: the upstream's, hash for hash."""
    state_root: Hash32
    """The genesis state root genesis.json's allocation really has (block 1 executes on it)."""

    @property
    def misreported_root(self) -> bool:
        """The upstream reports another state root for block 0 than its allocation has."""
        return self.header.state_root != self.state_root


def genesis_config(genesis: GenesisSpec) -> ChainConfig:
    """The fork schedule known before any block: genesis.json's rules at block 0."""
    return chain_config_for(genesis, [])


def check_genesis(genesis: GenesisSpec, config: ChainConfig, upstream: BlockHeaderAPI) -> GenesisCheck:
    """Compare genesis.json's block 0 with the upstream's; raise ``ChainMismatch`` if they are other chains.

    The one difference accepted is the empty trie root reported as block 0's state
    root (anvil with ``--init`` does so; its later blocks carry real roots): the header
    is stored as the upstream reports it, so block 1's parent hash links, and block 1
    executes on the allocation's real root.
    """
    ours = genesis_header(genesis, config)
    if ours.hash == upstream.hash:
        return GenesisCheck(ours, ours.state_root)
    reported = ours.copy(state_root=BLANK_ROOT_HASH)
    if upstream.state_root == BLANK_ROOT_HASH and reported.hash == upstream.hash:
        return GenesisCheck(reported, ours.state_root)
    differing = [name for name in ("state_root", *COMPARED_FIELDS[1:], "timestamp", "gas_limit", "extra_data",
                                   "difficulty", "mix_hash", "coinbase", "nonce", "parent_beacon_block_root")
                 if getattr(ours, name, None) != getattr(upstream, name, None)]
    raise ChainMismatch(
        f"the upstream's block 0 0x{upstream.hash.hex()} is not genesis.json's 0x{ours.hash.hex()}"
        f" (differing: {', '.join(differing) or 'the hash only'})"
    )


def genesis_header(genesis: GenesisSpec, config: ChainConfig) -> BlockHeaderAPI:
    """genesis.json's block 0 header, computed in a scratch memory database."""
    params = genesis_params(genesis, config.forks[0][1])
    scratch = chain_class(config).from_genesis(AtomicDB(), dict(params), genesis.alloc)
    return scratch.get_canonical_head()


def initialize_followed_chain(db: AtomicDatabaseAPI, config: ChainConfig, check: GenesisCheck, alloc: AccountState) -> Chain:
    """Write the config, genesis.json's allocation and the upstream's genesis header into an empty ``db``."""
    chain_cls = chain_class(config)
    write_config(db, config)
    vm_class = chain_cls.get_vm_class_for_block_number(BlockNumber(0))
    pre_genesis = BlockHeader(difficulty=0, block_number=-1, gas_limit=0)
    state = vm_class.build_state(db, pre_genesis, ChainContext(config.chain_id))
    apply_state_dict(state, alloc)
    state.persist()
    if state.state_root != check.state_root:
        raise ChainMismatch(f"genesis.json's allocation has root 0x{state.state_root.hex()}, expected 0x{check.state_root.hex()}")
    chain = chain_cls.from_genesis_header(db, check.header)
    assert isinstance(chain, Chain)
    return chain


def config_for_block(config: ChainConfig, genesis: GenesisSpec, parent_score: int, block: BlockSummary) -> ChainConfig:
    """``config`` with the forks ``block`` activates added (the merge by total difficulty, time forks).

    ``parent_score`` is py-evm's score of the parent, which before the merge is its
    total difficulty.
    """
    added: list[tuple[int, str]] = []
    merged = config.merge_block is not None
    ttd = genesis.terminal_total_difficulty
    if not merged and ttd is not None and parent_score >= ttd:
        added.append((block.number, MERGE_FORK))
        merged = True
    reached = newest_time_fork(config.fork_at(block.number), genesis.time_forks, block.number, block.timestamp)
    if reached is not None:
        if not merged:
            raise UnsupportedChain(f"{reached} activates at block {block.number}, before the merge")
        added.append((block.number, reached))
    if not added:
        return config
    forks = dict(config.forks)
    for start, name in added:
        forks[start] = name  # the merge and a time fork at one block: the time fork wins
    ordered = tuple(sorted(forks.items()))
    return replace(config, forks=ordered)


def config_rewound_to(config: ChainConfig, genesis: GenesisSpec, fork_number: int) -> ChainConfig:
    """``config`` without the activations blocks above ``fork_number`` made, for a rewind to that block.

    Where the merge and a time fork start is a fact of the branch that reached them
    first (``config_for_block``): when a reorg drops that block, the new branch's blocks
    must find their own start, or they would run under the old branch's rules. What
    genesis.json fixes by block number (``genesis_config``) belongs to the chain, not to
    a branch, and stays, above ``fork_number`` too.
    """
    kept = [entry for entry in config.forks if entry[0] <= fork_number]
    kept.extend(entry for entry in genesis_config(genesis).forks if entry[0] > fork_number)
    return replace(config, forks=tuple(sorted(kept)))


def activations_added(before: ChainConfig, after: ChainConfig) -> list[tuple[int, str]]:
    """The (first block, fork) entries of ``after``'s schedule that ``before``'s lacks, lowest first."""
    return [entry for entry in after.forks if entry not in before.forks]


def execute_block(chain: Chain, block: BlockAPI, parent_state_root: Hash32 | None = None) -> BlockAPI:
    """Execute ``block`` on its stored parent, compare the computed header, then store it.

    ``parent_state_root`` replaces the stored parent's state root for execution (the
    misreported genesis root). Raises ``HeaderMismatch`` naming the first differing
    field, ``InvalidBlock`` when py-evm refuses the block; either way the caller's
    buffer is to be dropped.
    """
    try:
        parent = chain.get_block_header_by_hash(block.header.parent_hash)
        base = chain.create_header_from_parent(parent).copy(gas_used=block.header.gas_used)
        if parent_state_root is not None:
            base = base.copy(state_root=parent_state_root)
        imported = chain.get_vm(base).import_block(block).block
    except _BLOCK_ERRORS as exc:
        raise InvalidBlock(block.number, block.hash, f"{type(exc).__name__}: {exc}") from exc
    compare_headers(imported.header, block.header)
    try:
        chain.validate_block(imported)
    except _BLOCK_ERRORS as exc:
        raise InvalidBlock(block.number, block.hash, f"{type(exc).__name__}: {exc}") from exc
    chain.chaindb.persist_block(imported)
    return imported


def compare_headers(ours: BlockHeaderAPI, theirs: BlockHeaderAPI) -> None:
    """Raise ``HeaderMismatch`` on the first computed field that differs, else on the hash."""
    for name in COMPARED_FIELDS:
        mine, upstream = getattr(ours, name, None), getattr(theirs, name, None)
        if mine != upstream:
            raise HeaderMismatch(theirs.block_number, name, mine, upstream)
    if ours.hash != theirs.hash:
        raise HeaderMismatch(theirs.block_number, "hash", ours.hash, theirs.hash)


def rewind(db: AtomicDatabaseAPI, fork_number: int) -> list[BlockHeaderAPI]:
    """Make block ``fork_number`` the canonical head: the blocks above leave the canonical chain.

    Their number→hash entries and transaction lookups are deleted (their bodies and
    receipts stay, stored by hash, so readers can still report their logs as removed).
    Returns the dropped headers, lowest first.
    """
    chaindb = ChainDB(db)
    head = chaindb.get_canonical_head()
    dropped: list[BlockHeaderAPI] = []
    for number in range(head.block_number, fork_number, -1):
        header = chaindb.get_canonical_block_header_by_number(BlockNumber(number))
        for tx_hash in chaindb.get_block_transaction_hashes(header):
            ChainDB._remove_transaction_from_canonical_chain(db, tx_hash)
        del db[SchemaV1.make_block_number_to_hash_lookup_key(BlockNumber(number))]
        dropped.append(header)
    fork = chaindb.get_canonical_block_hash(BlockNumber(fork_number))
    db[SchemaV1.make_canonical_head_hash_lookup_key()] = fork
    for key, gaps in ((SchemaV1.make_header_chain_gaps_lookup_key(), chaindb.get_header_chain_gaps()),
                      (SchemaV1.make_chain_gaps_lookup_key(), chaindb.get_chain_gaps())):
        db[key] = rlp.encode(_gaps_up_to(gaps, fork_number), sedes=chain_gaps)
    dropped.reverse()
    return dropped


def _gaps_up_to(gaps: ChainGaps, last: int) -> ChainGaps:
    """py-evm's record of which numbers it holds, cut back so that ``last`` is the tip again."""
    kept = tuple((start, BlockNumber(min(end, last))) for start, end in gaps[0] if start <= last)
    return kept, BlockNumber(last + 1)
