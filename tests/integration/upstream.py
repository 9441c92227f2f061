"""An anvil upstream for the follow tests and benchmark: started on the dev genesis, fed signed transactions.

Transactions are signed here (the dev keys of ``chain.dev``) and sent raw, so the
chain holds every kind the follower must rebuild: transfers, a contract deployment,
calls that emit events, EIP-7702 authorizations and EIP-4844 blob transactions.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rlp
from eth.vm.forks.cancun.constants import BEACON_ROOTS_ADDRESS
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from chain.dev import DEV_BALANCE, DEV_GAS_LIMIT, dev_accounts
from chain.system_contracts import system_contracts_alloc
from chain.transactions import kzg_to_versioned_hash
from deploy.anvil import anvil_rpc, start_anvil
from tests.contracts import STORE_INIT

CHAIN_ID = 1337
BLOB = (b"\x00" + b"ethercattle".ljust(31, b"\x00")).ljust(131_072, b"\x00")
"""One blob (field elements below the modulus: each starts with a zero byte)."""
BLOB_COMMITMENT = bytes.fromhex(
    "94af6128b71d7a029f32ba2e18bf5fcfe9b938c60b38d29addf35e23cda06e338dc26906cf5d9b11fc5c88f010ca2b0b")
BLOB_PROOF = bytes.fromhex(
    "948ef8c6a55234a19d2e3235104266466e4e06838e711eb22e16a4b7a3fbbcce6e9c7e8bb1366e2fe9dcfe7cb2ec8b44")
"""``BLOB``'s KZG commitment and proof (ckzg, the mainnet setup), fixed here: loading the setup costs seconds."""
BEEF = "0x000000000000000000000000000000000000bEEF"
FEES = {"maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}


def dev_genesis_json(chain_id: int) -> dict[str, Any]:
    """A geth genesis.json of the dev chain (chain.dev's accounts and system contracts), Prague from block 0.

The EIP-4788 beacon-roots contract is left out: anvil 1.7.1 does not make that
system call, so with the contract present its state roots differ from any other
client's from block 1 on. The genesis base fee is 0: anvil gives block 1 the
genesis base fee unchanged where EIP-1559 lowers it by 1/8 after an empty genesis,
and only 0 is the same either way (from block 2 on anvil follows EIP-1559).
"""
    alloc: dict[str, Any] = {"0x" + address.hex(): {"balance": hex(DEV_BALANCE)} for address, _ in dev_accounts()}
    for address, account in system_contracts_alloc().items():
        if address == BEACON_ROOTS_ADDRESS:
            continue  # anvil never calls it (EIP-4788), while py-evm would: left out, both agree
        alloc["0x" + address.hex()] = {
            "balance": hex(account["balance"]), "nonce": hex(account["nonce"]), "code": "0x" + account["code"].hex(),
            "storage": {hex(slot): hex(value) for slot, value in account["storage"].items()},
        }
    forks = ["homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock", "constantinopleBlock",
             "petersburgBlock", "istanbulBlock", "berlinBlock", "londonBlock", "mergeNetsplitBlock"]
    config: dict[str, Any] = {"chainId": chain_id, **{fork: 0 for fork in forks}, "terminalTotalDifficulty": 0,
                              "shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0}
    return {"config": config, "nonce": "0x0", "timestamp": "0x0", "extraData": "0x", "gasLimit": hex(DEV_GAS_LIMIT),
            "difficulty": "0x0", "mixHash": "0x" + "00" * 32, "coinbase": "0x" + "00" * 20, "baseFeePerGas": "0x0",
            "alloc": alloc}


def write_dev_genesis(path: Path, chain_id: int = CHAIN_ID) -> Path:
    path.write_text(json.dumps(dev_genesis_json(chain_id), indent=1))
    return path


@dataclass
class Anvil:
    """A running anvil and per-account nonces of what was sent to it."""

    process: subprocess.Popen[bytes]
    port: int
    genesis: Path
    nonces: dict[int, int] = field(default_factory=dict)

    @classmethod
    def start(cls, root: Path, *extra: str) -> "Anvil":
        genesis = write_dev_genesis(root / "genesis.json", CHAIN_ID)
        process, port = start_anvil(genesis, root / "anvil.log", *extra)
        return cls(process, port, genesis)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def rpc(self, method: str, *params: Any) -> Any:
        return anvil_rpc(self.port, method, *params)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()

    def address(self, account: int) -> str:
        return to_checksum_address(dev_accounts()[account][0])

    def head(self) -> dict[str, Any]:
        block: dict[str, Any] = self.rpc("eth_getBlockByNumber", "latest", False)
        return block

    # -- transactions ----------------------------------------------------------------

    def send(self, account: int, **fields: Any) -> str:
        """Sign ``fields`` (EIP-1559 unless they say otherwise) from dev account ``account``, send them, and
        return once they are mined: anvil answers eth_sendRawTransaction before it seals the block, so a
        head read right after could still be the block before."""
        tx_hash: str = self.rpc("eth_sendRawTransaction", "0x" + self.sign(account, **fields).hex())
        deadline = time.monotonic() + 10
        while self.rpc("eth_getTransactionReceipt", tx_hash) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"anvil did not mine {tx_hash} within 10s")
            time.sleep(0.01)
        return tx_hash

    def sign(self, account: int, **fields: Any) -> bytes:
        """``fields`` signed by dev account ``account`` with its next nonce (counted as used)."""
        _, key = dev_accounts()[account]
        nonce = self.nonces.get(account, 0)
        tx = {"chainId": CHAIN_ID, "nonce": nonce, "value": 0, "gas": 300_000, "type": 2, **FEES, **fields}
        self.nonces[account] = nonce + 1
        return bytes(Account.sign_transaction(tx, key).raw_transaction)

    def transfer(self, account: int, to: str, value: int) -> str:
        return self.send(account, to=to, value=value, gas=21_000)

    def deploy_store(self, account: int) -> str:
        """Deploy tests.contracts' Store; returns its address."""
        sender = to_checksum_address(dev_accounts()[account][0])
        address = to_checksum_address(keccak(_rlp_sender_nonce(sender, self.nonces.get(account, 0)))[12:])
        self.send(account, data=STORE_INIT)
        return address

    def store(self, account: int, contract: str, value: int) -> str:
        """Call Store with 32 bytes: it stores them and emits ``Stored(bytes32)``."""
        return self.send(account, to=contract, data=value.to_bytes(32, "big"))

    def delegate(self, account: int, authority: int, target: str) -> str:
        """An EIP-7702 transaction from ``account`` that sets ``authority``'s code to delegate to ``target``."""
        _, authority_key = dev_accounts()[authority]
        auth = Account.sign_authorization(
            {"chainId": CHAIN_ID, "address": target, "nonce": self.nonces.get(authority, 0)}, authority_key)
        self.nonces[authority] = self.nonces.get(authority, 0) + 1
        to = to_checksum_address(dev_accounts()[authority][0])
        return self.send(account, type=4, to=to, authorizationList=[auth])

    def blob(self, account: int) -> str:
        """An EIP-4844 transaction carrying ``BLOB``, in the network form (blob, commitment, proof)."""
        canonical = self.sign(account, type=3, to=BEEF, maxFeePerBlobGas=10**10,
                              blobVersionedHashes=[kzg_to_versioned_hash(BLOB_COMMITMENT)])
        network = canonical[:1] + rlp.encode([rlp.decode(canonical[1:]), [BLOB], [BLOB_COMMITMENT], [BLOB_PROOF]])
        tx_hash: str = self.rpc("eth_sendRawTransaction", "0x" + network.hex())
        return tx_hash


def _rlp_sender_nonce(sender: str, nonce: int) -> bytes:
    return bytes(rlp.encode([bytes.fromhex(sender[2:]), nonce]))
