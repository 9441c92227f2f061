"""Import a geth export (genesis.json + chain.rlp) into any py-evm database.

Every write goes through the ``db`` given (on the master: the change-data-capture
wrapper), so the import replicates like any other block. The fork schedule depends
on the blocks (see ``chain.forks``), so the file is read first, the schedule and
config computed, then genesis initialised (if the database is empty) and the blocks
imported one by one with py-evm's full validation. Re-running on the same database
skips what is already there, so an interrupted import resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import rlp
from eth.abc import AtomicDatabaseAPI, BlockAPI
from eth.chains.base import Chain
from eth.db.atomic import AtomicDB
from eth.db.header import HeaderDB
from eth.exceptions import CanonicalHeadNotFound, PyEVMError
from eth_keys.exceptions import BadSignature
from eth_typing import BlockNumber, Hash32
from eth_utils import ValidationError
from rlp.codec import consume_item
from rlp.exceptions import RLPException

from chain.config import ChainConfig, chain_class, has_config, read_config, write_config
from chain.errors import ChainMismatch, InvalidBlock
from chain.forks import BlockSummary, chain_config_for
from chain.genesis import GenesisSpec, genesis_params, initialize_chain, load_genesis

# Errors a bad block (rather than a broken database) makes py-evm or rlp raise.
_BLOCK_ERRORS = (ValidationError, PyEVMError, RLPException, BadSignature)

# Positions in every fork's header list (these never moved).
_DIFFICULTY, _NUMBER, _TIMESTAMP = 7, 8, 11


@dataclass(frozen=True)
class ImportProgress:
    """Reported after each block: ``number`` was just imported or found present."""

    number: int
    imported: int
    skipped: int
    total: int


ProgressCallback = Callable[[ImportProgress], None]


@dataclass(frozen=True)
class ImportResult:
    """What an import did, and where the chain's head ended up."""

    config: ChainConfig
    genesis_hash: Hash32
    imported: int
    """Blocks newly imported by this run."""
    skipped: int
    """Blocks already present in the database (0 on a first run)."""
    head_number: int
    head_hash: Hash32
    seconds: float


def split_rlp_items(data: bytes) -> list[bytes]:
    """Cut concatenated RLP items (as ``geth export`` writes blocks) into raw items."""
    items: list[bytes] = []
    position = 0
    while position < len(data):
        try:
            _, _, end = consume_item(data, position)
        except (RLPException, IndexError) as exc:
            raise InvalidBlock(
                len(items), None, f"undecodable RLP at byte {position}: {exc}"
            ) from exc
        if end > len(data):
            raise InvalidBlock(len(items), None, f"truncated RLP item at byte {position}")
        items.append(data[position:end])
        position = end
    return items


def read_raw_blocks(path: str | Path) -> list[bytes]:
    """The raw RLP of each block in a chain.rlp file, in file order."""
    return split_rlp_items(Path(path).read_bytes())


def block_summary(raw_block: bytes, position: int = 0) -> BlockSummary:
    """Number, difficulty and timestamp of a raw block, without knowing its fork."""
    try:
        header = rlp.decode(raw_block)[0]
        return BlockSummary(
            number=_int(header[_NUMBER]),
            difficulty=_int(header[_DIFFICULTY]),
            timestamp=_int(header[_TIMESTAMP]),
        )
    except (RLPException, IndexError, TypeError) as exc:
        raise InvalidBlock(position, None, f"not a block header: {exc!r}") from exc


def _int(value: Any) -> int:
    if not isinstance(value, bytes):
        raise TypeError("expected an RLP string, got a list")
    return int.from_bytes(value, "big")


def decode_block(raw_block: bytes, config: ChainConfig) -> BlockAPI:
    """Decode a raw block with the block class of the fork its number runs."""
    number = block_summary(raw_block).number
    vm_class = chain_class(config).get_vm_class_for_block_number(BlockNumber(number))
    try:
        block: BlockAPI = rlp.decode(raw_block, sedes=vm_class.get_block_class())
    except RLPException as exc:
        raise InvalidBlock(
            number, None, f"cannot decode as a {vm_class.fork} block: {exc}"
        ) from exc
    return block


def read_blocks_rlp(path: str | Path, config: ChainConfig) -> list[BlockAPI]:
    """Decode every block of a chain.rlp file with ``config``'s fork schedule."""
    return [decode_block(raw, config) for raw in read_raw_blocks(path)]


def import_chain(
    db: AtomicDatabaseAPI,
    genesis_path: str | Path,
    chain_path: str | Path,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Import genesis.json + chain.rlp into ``db``; a re-run is a successful no-op.

    Raises ``InvalidBlock`` (naming the block) on the first block that fails
    decoding or validation, ``ChainMismatch`` if ``db`` holds another chain.
    """
    started = time.monotonic()
    genesis = load_genesis(genesis_path)
    raw_blocks = read_raw_blocks(chain_path)
    summaries = [block_summary(raw, i) for i, raw in enumerate(raw_blocks)]
    last_block = summaries[-1].number if summaries else 0
    chain, config = prepare_chain(db, genesis, chain_config_for(genesis, summaries), last_block)
    blocks = [decode_block(raw, config) for raw in raw_blocks]
    imported, skipped = import_blocks(chain, blocks, progress)
    head = chain.get_canonical_head()
    return ImportResult(
        config=config,
        genesis_hash=chain.get_canonical_block_hash(BlockNumber(0)),
        imported=imported,
        skipped=skipped,
        head_number=head.block_number,
        head_hash=head.hash,
        seconds=time.monotonic() - started,
    )


def prepare_chain(
    db: AtomicDatabaseAPI, genesis: GenesisSpec, config: ChainConfig, last_block: int
) -> tuple[Chain, ChainConfig]:
    """Initialise an empty ``db``, or check that it holds this chain; settle its config.

    ``config`` was computed from blocks up to ``last_block``. If the database already
    has a config, both must agree on every block up to the lower of the database's
    head and ``last_block``; the one that knows more blocks is kept (and stored).
    Returns the chain and the config it runs.
    """
    params = genesis_params(genesis, config.forks[0][1])
    if not has_config(db):
        return initialize_chain(db, config, params, genesis.alloc), config
    stored = read_config(db)
    head = _head_number(db)
    settled = _settle_config(stored, config, head, last_block)
    if settled != stored:
        write_config(db, settled)
    if head is None:  # config written, genesis not: an earlier run died in between
        return initialize_chain(db, settled, params, genesis.alloc), settled
    chain = chain_class(settled)(db)
    expected = _genesis_hash(settled, params, genesis)
    actual = chain.get_canonical_block_hash(BlockNumber(0))
    if actual != expected:
        raise ChainMismatch(
            f"database genesis 0x{actual.hex()} is not this genesis.json's 0x{expected.hex()}"
        )
    return chain, settled


def _settle_config(
    stored: ChainConfig, computed: ChainConfig, head: int | None, last_block: int
) -> ChainConfig:
    """Pick the config to keep when a database already holds one (see prepare_chain)."""
    if stored == computed:
        return stored
    horizon = min(head or 0, last_block)
    # Fork times, fork id blocks and the deposit address change no rule; a config stored
    # by an older ethercattle lacks them and takes them from the genesis.
    informed = replace(
        stored,
        fork_times=computed.fork_times,
        fork_id_blocks=computed.fork_id_blocks,
        deposit_contract=computed.deposit_contract,
    )
    same_rules = replace(computed, forks=stored.forks) == informed
    if not same_rules or _forks_up_to(stored, horizon) != _forks_up_to(computed, horizon):
        raise ChainMismatch(
            f"the database holds another chain: stored config {stored.to_json()} "
            f"disagrees with {computed.to_json()} on blocks 0..{horizon}"
        )
    return computed if last_block >= (head or 0) else informed


def _forks_up_to(config: ChainConfig, horizon: int) -> list[tuple[int, str]]:
    return [(start, name) for start, name in config.forks if start <= horizon]


def _head_number(db: AtomicDatabaseAPI) -> int | None:
    try:
        return HeaderDB(db).get_canonical_head().block_number
    except CanonicalHeadNotFound:
        return None


def _genesis_hash(
    config: ChainConfig, params: dict[str, Any], genesis: GenesisSpec
) -> Hash32:
    """Genesis hash computed in a scratch memory database (writes nothing to ``db``)."""
    scratch = chain_class(config).from_genesis(AtomicDB(), dict(params), genesis.alloc)
    return scratch.get_canonical_head().hash


def import_blocks(
    chain: Chain, blocks: Sequence[BlockAPI], progress: ProgressCallback | None = None
) -> tuple[int, int]:
    """Import ``blocks`` in order, skipping those already stored; (imported, skipped)."""
    imported = skipped = 0
    genesis_hash = chain.get_canonical_block_hash(BlockNumber(0))
    for block in blocks:
        if block.number == 0:
            if block.hash != genesis_hash:
                raise ChainMismatch(f"the file's block 0 is not the genesis 0x{genesis_hash.hex()}")
        elif chain.chaindb.header_exists(block.hash):
            skipped += 1
        else:
            _import_one(chain, block)
            imported += 1
        if progress is not None:
            progress(ImportProgress(block.number, imported, skipped, len(blocks)))
    return imported, skipped


def _import_one(chain: Chain, block: BlockAPI) -> None:
    _check_chain_ids(block, chain.chain_id)
    try:
        chain.import_block(block)
    except _BLOCK_ERRORS as exc:
        raise InvalidBlock(block.number, block.hash, _reason(exc)) from exc


def _check_chain_ids(block: BlockAPI, chain_id: int) -> None:
    """Replay protection, which py-evm leaves out: EIP-155/typed chain ids must match."""
    for index, transaction in enumerate(block.transactions):
        tx_chain_id = transaction.chain_id
        if tx_chain_id is not None and tx_chain_id != chain_id:
            raise InvalidBlock(
                block.number,
                block.hash,
                f"transaction {index} is signed for chain id {tx_chain_id}, not {chain_id}",
            )


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
