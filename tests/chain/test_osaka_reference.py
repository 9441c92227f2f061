"""The Osaka VM against an implementation we did not write: the execution-specs.

Blocks mined by our Osaka/BPO VMs (CLZ, P-256 verify valid and invalid, modexp edge
cases, blobs filling each fork's maximum, a BPO1 and a BPO2 transition) are handed,
header and all, to the reference's ``state_transition`` (``ethereum-execution``,
forks ``osaka``, ``bpo1``, ``bpo2``). It re-executes every transaction and refuses the
block unless gas used, receipts, logs bloom, state root, blob gas and excess blob gas
are exactly its own; results are stored by the contracts, so they are in the state
root. The 2^24 transaction gas cap is compared on the same raw transactions.
"""

from __future__ import annotations

from typing import Any

import pytest
import rlp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from eth.abc import BlockAPI
from eth.db.atomic import AtomicDB
from eth_account import Account
from eth_typing import Address
from ethereum.exceptions import EthereumException
import ethereum.forks.bpo1.fork
import ethereum.forks.bpo1.vm.gas
import ethereum.forks.bpo2.fork
import ethereum.forks.bpo2.vm.gas
import ethereum.forks.osaka.fork
import ethereum.forks.osaka.vm.gas
from ethereum.forks import bpo1, bpo2, osaka
from ethereum_rlp import rlp as reference_rlp
from ethereum_types.bytes import Bytes, Bytes20, Bytes32
from ethereum_types.numeric import U64, U256, Uint

from chain.config import open_chain
from chain.dev import DevMiner, dev_accounts
from chain.errors import InvalidTransaction
from chain.forks import BlockSummary, chain_config_for
from chain.genesis import genesis_params, initialize_chain, parse_genesis
from chain.system_contracts import system_contracts_alloc
from chain.transactions import decode_transaction

CHAIN_ID = 7951
GWEI = 10**9
SENDER_KEY = dev_accounts()[0][1]
BPO1_TIME, BPO2_TIME = 30, 60

CLZ_INPUTS = (0, 1, 0xFF, 2**128, 2**255, 2**256 - 1)
CLZ_CONTRACT = Address(bytes.fromhex("00000000000000000000000000000000000c1200"))
CLZ_CODE = b"".join(
    b"\x7f" + value.to_bytes(32, "big") + b"\x1e" + bytes([0x60, slot, 0x55])
    for slot, value in enumerate(CLZ_INPUTS)
) + bytes.fromhex("4a60405500")  # BLOBBASEFEE -> slot 0x40
"""Stores CLZ of each input at slots 0.., and the blob base fee at slot 0x40."""

PROBER_CODE = bytes.fromhex(
    "60203603"                  # len = CALLDATASIZE - 32
    "806020600037"              # CALLDATACOPY(0, 32, len)
    "600060008260006000355afa"  # STATICCALL(GAS, calldata[0:32], 0, len, 0, 0)
    "600055"                    # slot 0: success
    "3d600155"                  # slot 1: RETURNDATASIZE
    "3d600060003e"              # RETURNDATACOPY(0, 0, RETURNDATASIZE)
    "3d600020600255"            # slot 2: keccak of the output
    "5a600355"                  # slot 3: gas left
    "00"
)
"""Calls the precompile named by the first calldata word with the rest as input and
stores success, output size, output hash and gas left."""

P256 = 0x100
MODEXP = 0x05


def _modexp_input(base: bytes, exponent: bytes, modulus: bytes, lengths: tuple[int, int, int] | None = None) -> bytes:
    declared = lengths or (len(base), len(exponent), len(modulus))
    return b"".join(n.to_bytes(32, "big") for n in declared) + base + exponent + modulus


def _p256_inputs() -> dict[str, bytes]:
    key = ec.derive_private_key(0xC0FFEE, ec.SECP256R1())
    digest = bytes(range(32))
    r, s = decode_dss_signature(key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))))
    numbers = key.public_key().public_numbers()
    valid = digest + b"".join(n.to_bytes(32, "big") for n in (r, s, numbers.x, numbers.y))
    return {
        "p256-valid": valid,
        "p256-wrong-hash": bytes(32) + valid[32:],
        "p256-s-zero": valid[:64] + bytes(32) + valid[96:],
        "p256-off-curve": valid[:128] + (numbers.y ^ 1).to_bytes(32, "big"),
        "p256-short-input": valid[:159],
    }


PROBES: dict[str, tuple[int, bytes]] = {
    **{name: (P256, data) for name, data in _p256_inputs().items()},
    "modexp-all-empty": (MODEXP, _modexp_input(b"", b"", b"")),
    "modexp-zero-to-the-zero": (MODEXP, _modexp_input(b"", b"", b"\x05")),
    "modexp-small-minimum-gas": (MODEXP, _modexp_input(b"\x03", b"\x05", b"\x07")),
    "modexp-zero-modulus": (MODEXP, _modexp_input(b"\x02", b"\x03", bytes(3))),
    "modexp-long-exponent": (MODEXP, _modexp_input(b"\x02" * 32, b"\x01" * 64, b"\xfd" * 32)),
    "modexp-1024-byte-modulus": (MODEXP, _modexp_input(b"\x07" * 1024, b"\x03", b"\xff" * 1024)),
    "modexp-base-over-1024": (MODEXP, _modexp_input(b"\x01", b"\x01", b"\x05", (1025, 1, 1))),
    "modexp-modulus-over-1024": (MODEXP, _modexp_input(b"\x01", b"\x01", b"\x05", (1, 1, 1025))),
}
PROBERS = {name: Address((0xC000 + i).to_bytes(20, "big")) for i, name in enumerate(PROBES)}

BLOBS_PER_BLOCK = ((12, (6, 3)), (24, (6, 3)), (36, (6, 6, 3)), (48, (6,)), (72, (6, 6, 6, 3)))
"""(timestamp, blobs per transaction): each fork's maximum (9, 15, 21), then some."""


def _genesis_document() -> dict[str, Any]:
    alloc: dict[str, Any] = {"0x" + dev_accounts()[0][0].hex(): {"balance": hex(10**24)}}
    for address, account in system_contracts_alloc().items():
        alloc["0x" + address.hex()] = {"nonce": hex(account["nonce"]), "code": "0x" + account["code"].hex()}
    alloc["0x" + CLZ_CONTRACT.hex()] = {"code": "0x" + CLZ_CODE.hex()}
    for address in PROBERS.values():
        alloc["0x" + address.hex()] = {"code": "0x" + PROBER_CODE.hex()}
    forks = ("homestead", "eip150", "eip155", "eip158", "byzantium", "constantinople",
             "petersburg", "istanbul", "berlin", "london")
    return {
        "config": {
            "chainId": CHAIN_ID, **{f"{name}Block": 0 for name in forks},
            "terminalTotalDifficulty": 0, "shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0,
            "osakaTime": 0, "bpo1Time": BPO1_TIME, "bpo2Time": BPO2_TIME,
            "blobSchedule": {
                name: {"target": int(module.vm.gas.BLOB_SCHEDULE_TARGET),
                       "max": int(module.vm.gas.BLOB_SCHEDULE_MAX),
                       "baseFeeUpdateFraction": int(module.vm.gas.BLOB_BASE_FEE_UPDATE_FRACTION)}
                for name, module in (("osaka", osaka), ("bpo1", bpo1), ("bpo2", bpo2))
            },
        },
        "difficulty": "0x0",
        "gasLimit": hex(60_000_000),
        "alloc": alloc,
    }


def _sign(nonce: int, **fields: Any) -> bytes:
    transaction = {"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "value": 0, "gas": 1_000_000,
                   "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": GWEI, **fields}
    return bytes(Account.from_key(SENDER_KEY).sign_transaction(transaction).raw_transaction)


def _blob_transaction(nonce: int, blobs: int) -> bytes:
    hashes = [b"\x01" + bytes([nonce, i]) + bytes(29) for i in range(blobs)]
    return _sign(nonce, type=3, to=CLZ_CONTRACT, gas=21_000, maxFeePerBlobGas=10**12,
                 blobVersionedHashes=hashes)


class MinedChain:
    """Our side: the genesis, then blocks mined by the dev miner on our Osaka VMs."""

    def __init__(self) -> None:
        self.document = _genesis_document()
        spec = parse_genesis(self.document)
        planned = [BlockSummary(n, 0, t) for n, (t, _) in enumerate(BLOBS_PER_BLOCK, start=1)]
        config = chain_config_for(spec, planned)
        self.db = AtomicDB()
        initialize_chain(self.db, config, genesis_params(spec, config.forks[0][1]), spec.alloc)
        self.miner = DevMiner(self.db)
        self.nonce = 0
        self.blocks: list[BlockAPI] = []
        for index, (timestamp, blob_counts) in enumerate(BLOBS_PER_BLOCK):
            transactions = [self._next(_blob_transaction, blobs) for blobs in blob_counts]
            if index == 0:
                transactions.append(self._next(lambda nonce: _sign(nonce, to=CLZ_CONTRACT)))
                for name, (precompile, data) in PROBES.items():
                    payload = precompile.to_bytes(32, "big") + data
                    transactions.append(self._next(lambda nonce: _sign(nonce, to=PROBERS[name], data=payload)))
            mined = self.miner.mine(transactions, timestamp=timestamp)
            assert not mined.skipped, mined.skipped[0].error
            self.blocks.append(mined.block)

    def _next(self, build: Any, *args: Any) -> bytes:
        raw: bytes = build(self.nonce, *args)
        self.nonce += 1
        return raw

    def storage(self, address: Address, slot: int) -> int:
        return open_chain(self.db).get_vm().state.get_storage(address, slot)


@pytest.fixture(scope="module")
def mined() -> MinedChain:
    return MinedChain()


def _reference_module(timestamp: int) -> Any:
    if timestamp >= BPO2_TIME:
        return bpo2
    return bpo1 if timestamp >= BPO1_TIME else osaka


def _reference_chain(mined: MinedChain) -> Any:
    """The reference's chain at our genesis: its allocation and our genesis block."""
    state = osaka.state.State()
    for key, account in mined.document["alloc"].items():
        address = Bytes20(bytes.fromhex(key[2:]))
        osaka.state.set_account(state, address, osaka.fork_types.Account(
            nonce=Uint(int(account.get("nonce", "0x0"), 16)),
            balance=U256(int(account.get("balance", "0x0"), 16)),
            code=Bytes(bytes.fromhex(account.get("code", "0x")[2:])),
        ))
    genesis = open_chain(mined.db).get_canonical_block_by_number(0)
    blocks = [reference_rlp.decode_to(osaka.blocks.Block, rlp.encode(genesis))]
    return osaka.fork.BlockChain(blocks=blocks, state=state, chain_id=U64(CHAIN_ID))


def _as_block_of(module: Any, block: Any) -> Any:
    """``block`` (ours or the reference's) as a block of the reference fork ``module``."""
    encoded = rlp.encode(block) if isinstance(block, BlockAPI) else reference_rlp.encode(block)
    return reference_rlp.decode_to(module.blocks.Block, encoded)


def _as_state_of(module: Any, state: Any) -> Any:
    """The reference ``state`` rebuilt with the accounts of fork ``module``."""
    converted = module.state.State()
    for address, account in state._main_trie._data.items():
        module.state.set_account(converted, address, module.fork_types.Account(
            nonce=account.nonce, balance=account.balance, code=account.code))
    for address, storage in state._storage_tries.items():
        for slot, value in storage._data.items():
            module.state.set_storage(converted, address, slot, value)
    return converted


def test_reference_computes_our_genesis_state_root(mined: MinedChain) -> None:
    reference = _reference_chain(mined)
    genesis = open_chain(mined.db).get_canonical_block_by_number(0)

    assert bytes(osaka.state.state_root(reference.state)) == genesis.header.state_root


def test_reference_accepts_every_block_we_mined(mined: MinedChain) -> None:
    reference = _reference_chain(mined)
    for block in mined.blocks:
        module = _reference_module(block.header.timestamp)
        # Each reference fork has its own Header and Account classes and reads those of
        # another fork as absent (a parent "before blobs", empty accounts); geth and
        # EIP-7892 carry both across a BPO transition, so they are handed over.
        reference.blocks[-1] = _as_block_of(module, reference.blocks[-1])
        reference.state = _as_state_of(module, reference.state)
        module.fork.state_transition(reference, _as_block_of(module, block))
    assert len(reference.blocks) == len(mined.blocks) + 1


def test_blocks_span_osaka_bpo1_and_bpo2_at_their_blob_maximum(mined: MinedChain) -> None:
    config = open_chain(mined.db)
    forks = [type(config.get_vm(block.header)).fork for block in mined.blocks]
    blobs = [block.header.blob_gas_used // 2**17 for block in mined.blocks]

    assert forks == ["osaka", "osaka", "bpo1", "bpo1", "bpo2"]
    assert blobs == [9, 9, 15, 6, 21]


def test_clz_counts_leading_zero_bits(mined: MinedChain) -> None:
    counts = [mined.storage(CLZ_CONTRACT, slot) for slot in range(len(CLZ_INPUTS))]

    assert counts == [256, 255, 248, 127, 0, 0]


@pytest.mark.parametrize(("name", "succeeds", "output"), [
    ("p256-valid", True, (1).to_bytes(32, "big")),
    ("p256-wrong-hash", True, b""),
    ("p256-short-input", True, b""),
    ("modexp-zero-to-the-zero", True, b"\x01"),
    ("modexp-zero-modulus", True, bytes(3)),
    ("modexp-base-over-1024", False, b""),
    ("modexp-modulus-over-1024", False, b""),
])
def test_precompile_outcome(mined: MinedChain, name: str, succeeds: bool, output: bytes) -> None:
    prober = PROBERS[name]

    assert mined.storage(prober, 0) == int(succeeds)
    assert mined.storage(prober, 1) == len(output)


@pytest.mark.parametrize(("gas", "refused"), [(2**24, False), (2**24 + 1, True)])
def test_transaction_gas_cap_matches_the_reference(mined: MinedChain, gas: int, refused: bool) -> None:
    raw = _sign(mined.nonce, to=CLZ_CONTRACT, gas=gas)
    reference_transaction = osaka.transactions.decode_transaction(Bytes(raw))
    try:
        osaka.transactions.validate_transaction(reference_transaction)
        reference_refuses = False
    except EthereumException:
        reference_refuses = True
    try:
        decode_transaction(open_chain(mined.db), raw)
        we_refuse = False
    except InvalidTransaction as refusal:
        we_refuse = True
        assert "transaction gas limit too high" in refusal.reason

    assert (we_refuse, reference_refuses) == (refused, refused)


@pytest.mark.parametrize("excess", [0, 5 * 2**17, 70_000_000])
@pytest.mark.parametrize("blobs_used", [0, 6, 9])
@pytest.mark.parametrize("base_fee", [1, 10**9, 10**12])
def test_excess_blob_gas_matches_the_reference(
    mined: MinedChain, excess: int, blobs_used: int, base_fee: int
) -> None:
    # Both EIP-7918 branches: a blob fee under the reserve price and one above it.
    parent = mined.blocks[0].header.copy(
        excess_blob_gas=excess, blob_gas_used=blobs_used * 2**17, base_fee_per_gas=base_fee)
    osaka_vm = type(open_chain(mined.db).get_vm(mined.blocks[0].header))
    reference_parent = reference_rlp.decode_to(osaka.blocks.Header, rlp.encode(parent))

    ours = osaka_vm.blob_parameters.excess_after(parent, reserve_price=True)

    assert ours == int(osaka.vm.gas.calculate_excess_blob_gas(reference_parent))
