"""A development chain: Osaka rules (or an older fork) from genesis, funded well-known
accounts, a miner.

The dev chain lets the whole system (master, CDC, replicas, RPC) run without any
external chain. Its genesis is deterministic for a given chain id, so two masters
started from scratch agree on the genesis hash. The accounts are the ones anvil and
hardhat fund (the "test … junk" mnemonic), so existing dev tooling and tutorials
work unchanged; their keys are public knowledge: never send them real value.

``DevMiner`` is synchronous on purpose: the master calls it from its event loop or
a timer, and py-evm does the work in one go anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from eth.abc import (
    AtomicDatabaseAPI,
    BlockAPI,
    BlockHeaderAPI,
    ReceiptAPI,
    SignedTransactionAPI,
)
from eth.chains.base import Chain
from eth.constants import ZERO_ADDRESS, ZERO_HASH32
from eth.exceptions import PyEVMError
from eth.typing import AccountDetails, AccountState, HeaderParams
from eth.vm.base import VM
from eth.vm.forks.cancun.state import get_total_blob_gas
from eth_hash.auto import keccak
from eth_keys import keys
from eth_keys.exceptions import BadSignature
from eth_typing import Address, Hash32
from eth_utils import ValidationError

from chain.config import (
    FORK_NAMES,
    LATEST_FORK,
    PROOF_OF_STAKE_FORKS,
    ChainConfig,
    chain_class,
    has_config,
    open_chain,
    read_config,
)
from chain.errors import ChainError, ChainMismatch, InvalidTransaction
from chain.forks import chain_config_for
from chain.osaka import blob_parameters_of
from chain.genesis import (
    BLOCK_FORK_KEYS,
    GenesisHeader,
    GenesisSpec,
    genesis_params,
    initialize_chain,
)
from chain.system_contracts import system_contracts_alloc
from chain.transactions import decode_transaction

DEV_CHAIN_ID = 1337
"""Default chain id (geth's and anvil's dev default)."""

DEV_GAS_LIMIT = 30_000_000
"""Block gas limit, kept constant from block to block."""

DEV_BALANCE = 10**24
"""Wei given to each dev account at genesis (one million ether)."""

DEV_MNEMONIC = "test test test test test test test test test test test junk"
"""The BIP-39 mnemonic the dev keys derive from (paths m/44'/60'/0'/0/0 … /9)."""

DEV_PRIVATE_KEYS: tuple[str, ...] = (
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)
"""Private keys (hex) of the funded dev accounts; the first is
0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266, as in anvil and hardhat."""

_PRECOMPILES = tuple(Address(i.to_bytes(20, "big")) for i in range(0x01, 0x12))
"""0x01…0x11, given 1 wei as geth's dev genesis does, so they are never empty."""

DEV_FORKS: tuple[str, ...] = ("paris", "shanghai", "cancun", "prague", "osaka")
"""Forks a dev chain can run from genesis (the miner mines proof-of-stake blocks only)."""

# Errors a transaction (rather than the database) makes py-evm raise while applied.
_TRANSACTION_ERRORS = (ValidationError, PyEVMError, BadSignature)


def dev_accounts() -> tuple[tuple[Address, bytes], ...]:
    """(address, private key bytes) of each funded dev account, in derivation order."""
    pairs = []
    for key_hex in DEV_PRIVATE_KEYS:
        private_key = keys.PrivateKey(bytes.fromhex(key_hex))
        address = Address(private_key.public_key.to_canonical_address())
        pairs.append((address, private_key.to_bytes()))
    return tuple(pairs)


def dev_genesis_spec(chain_id: int = DEV_CHAIN_ID, fork: str = LATEST_FORK) -> GenesisSpec:
    """The dev genesis as geth would read it: every fork up to ``fork`` at 0, merged at genesis."""
    if fork not in DEV_FORKS:
        raise ChainError(f"a dev chain runs one of {', '.join(DEV_FORKS)}, not {fork!r}")
    alloc: AccountState = {
        address: AccountDetails(balance=DEV_BALANCE, nonce=0, code=b"", storage={})
        for address, _ in dev_accounts()
    }
    for precompile in _PRECOMPILES:
        alloc[precompile] = AccountDetails(balance=1, nonce=0, code=b"", storage={})
    alloc.update(system_contracts_alloc())
    return GenesisSpec(
        chain_id=chain_id,
        block_forks=tuple((name, 0) for _, name in BLOCK_FORK_KEYS),
        time_forks=tuple((name, 0) for name in DEV_FORKS[1 : DEV_FORKS.index(fork) + 1]),
        terminal_total_difficulty=0,
        dao_fork_block=None,
        dao_fork_support=False,
        header=GenesisHeader(
            nonce=bytes(8),
            timestamp=0,
            extra_data=b"",
            gas_limit=DEV_GAS_LIMIT,
            difficulty=0,
            mix_hash=ZERO_HASH32,
            coinbase=ZERO_ADDRESS,
            base_fee_per_gas=None,
            excess_blob_gas=None,
            blob_gas_used=None,
        ),
        alloc=alloc,
    )


def dev_genesis(
    chain_id: int = DEV_CHAIN_ID, fork: str = LATEST_FORK
) -> tuple[ChainConfig, dict[str, HeaderParams], AccountState]:
    """(config, genesis header params, genesis state) of the dev chain."""
    spec = dev_genesis_spec(chain_id, fork)
    config = chain_config_for(spec, ())
    return config, genesis_params(spec, config.forks[0][1]), spec.alloc


def init_dev_chain(
    db: AtomicDatabaseAPI, chain_id: int = DEV_CHAIN_ID, fork: str = LATEST_FORK
) -> Chain:
    """Create the dev chain running ``fork`` in an empty ``db``; if ``db`` holds a chain,
    just open it (it keeps the fork it was created with).

    Raises ``ChainMismatch`` if the existing chain has another chain id.
    """
    if has_config(db):
        existing = read_config(db)
        if existing.chain_id != chain_id:
            raise ChainMismatch(
                f"the database holds chain id {existing.chain_id}, not {chain_id}"
            )
        return open_chain(db)
    config, params, state = dev_genesis(chain_id, fork)
    return initialize_chain(db, config, params, state)


@dataclass(frozen=True)
class TransactionOutcome:
    """What became of one submitted raw transaction."""

    index: int
    """Position in the list passed to ``DevMiner.mine``."""
    raw: bytes
    transaction: SignedTransactionAPI | None
    """None if it could not be decoded."""
    receipt: ReceiptAPI | None
    """None if it was skipped."""
    error: str | None
    """Why it was skipped, None if it was included."""

    @property
    def included(self) -> bool:
        return self.receipt is not None

    @property
    def tx_hash(self) -> Hash32 | None:
        return None if self.transaction is None else self.transaction.hash


@dataclass(frozen=True)
class MinedBlock:
    """A block the miner committed, and the fate of every transaction offered."""

    block: BlockAPI
    outcomes: tuple[TransactionOutcome, ...]

    @property
    def included(self) -> tuple[TransactionOutcome, ...]:
        return tuple(o for o in self.outcomes if o.included)

    @property
    def skipped(self) -> tuple[TransactionOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.included)


class DevMiner:
    """Mines proof-of-stake blocks on the chain in ``db`` from raw transactions.

    Blocks are built the way py-evm imports them (beacon-root and history-contract
    updates before the transactions, EIP-7685 requests after), not with
    ``MiningChain.mine_all``, which skips both and so mines Cancun/Prague blocks
    that a validating import would reject.
    """

    def __init__(
        self,
        db: AtomicDatabaseAPI,
        *,
        coinbase: Address = ZERO_ADDRESS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = read_config(db)
        self._chain = chain_class(self._config)(db)
        self._coinbase = coinbase
        self._clock = clock

    @property
    def chain(self) -> Chain:
        return self._chain

    def mine(
        self, raw_transactions: Sequence[bytes] = (), *, timestamp: int | None = None
    ) -> MinedBlock:
        """Mine one block holding every transaction that applies, in the given order.

        A transaction that cannot be decoded or fails validation (nonce, balance,
        fee cap, block gas left) is skipped with the reason; one that reverts is
        included with a failed receipt, as on any chain. ``timestamp`` defaults to
        the clock and is raised to parent + 1 if not later than the parent.
        """
        parent = self._chain.get_canonical_head()
        header = self._next_header(parent, timestamp)
        vm = self._chain.get_vm(header)
        # The pre/post-processing hooks live on py-evm's VM class, not on its API.
        assert isinstance(vm, VM)
        vm.block_preprocessing(vm.get_block())
        outcomes, included, receipts, header = self._apply(vm, header, raw_transactions)
        filled = vm.set_block_transactions_and_withdrawals(
            vm.get_block(), header, included, receipts
        )
        mined = vm.mine_block(vm.block_postprocessing(filled)).block
        self._chain.persist_block(mined)
        return MinedBlock(mined, tuple(outcomes))

    def _next_header(self, parent: BlockHeaderAPI, timestamp: int | None) -> BlockHeaderAPI:
        number = parent.block_number + 1
        fork = self._config.fork_at(number)
        if fork not in PROOF_OF_STAKE_FORKS:
            raise ChainError(f"the dev miner mines proof-of-stake blocks; block {number} is {fork}")
        wanted = int(self._clock()) if timestamp is None else timestamp
        params: dict[str, HeaderParams] = {
            "timestamp": max(wanted, parent.timestamp + 1),
            "coinbase": self._coinbase,
            "gas_limit": parent.gas_limit,
            # prevRandao: no beacon chain here; deterministic yet different per block.
            "mix_hash": Hash32(keccak(parent.hash)),
        }
        if FORK_NAMES.index(fork) >= FORK_NAMES.index("cancun"):
            params["parent_beacon_block_root"] = ZERO_HASH32  # as geth's simulated beacon
        return self._chain.create_header_from_parent(parent, **params)

    def _apply(
        self, vm: VM, header: BlockHeaderAPI, raw_transactions: Sequence[bytes]
    ) -> tuple[
        list[TransactionOutcome], list[SignedTransactionAPI], list[ReceiptAPI], BlockHeaderAPI
    ]:
        """Apply what validates, in order; the header accumulates gas, bloom, blob gas."""
        outcomes: list[TransactionOutcome] = []
        included: list[SignedTransactionAPI] = []
        receipts: list[ReceiptAPI] = []
        for index, raw in enumerate(raw_transactions):
            try:
                transaction = decode_transaction(self._chain, raw, header.block_number)
            except InvalidTransaction as exc:
                outcomes.append(TransactionOutcome(index, raw, None, None, exc.reason))
                continue
            try:
                # Read-only checks first: py-evm cannot roll back a transaction it
                # refuses mid-way (apply_transaction drops the journal checkpoints).
                vm.validate_transaction_against_header(header, transaction)
                vm.state.validate_transaction(transaction)
                self._check_blob_room(header, transaction)
            except _TRANSACTION_ERRORS as exc:
                outcomes.append(TransactionOutcome(index, raw, transaction, None, str(exc)))
                continue
            # Past validation a failure is a bug, not a bad transaction: it propagates and
            # the block is abandoned before anything reaches the database.
            receipt, _ = vm.apply_transaction(header, transaction)
            header = vm.add_receipt_to_header(header, receipt)
            header = vm.increment_blob_gas_used(header, transaction)
            included.append(transaction)
            receipts.append(receipt)
            outcomes.append(TransactionOutcome(index, raw, transaction, receipt, None))
        return outcomes, included, receipts, header

    def _check_blob_room(self, header: BlockHeaderAPI, transaction: SignedTransactionAPI) -> None:
        """Refuse a blob transaction the block has no blob gas left for.

        py-evm checks the block's blob gas only when the block is finished, after
        its state is already written; a full block must skip the transaction instead.
        """
        blob_gas = get_total_blob_gas(transaction)
        if not blob_gas:
            return
        limit = blob_parameters_of(self._chain.get_vm_class(header)).max_gas
        if header.blob_gas_used + blob_gas > limit:
            raise ValidationError(
                f"block blob gas full: {header.blob_gas_used} used + {blob_gas} > {limit}"
            )
