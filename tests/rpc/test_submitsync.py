"""eth_sendRawTransactionSync (EIP-7966): the receipt once a block holds the transaction, or geth's timeout."""

from __future__ import annotations

import asyncio

from eth.db.atomic import AtomicDB
from eth_account import Account

from chain.dev import DEV_CHAIN_ID, DevMiner, dev_accounts, init_dev_chain
from rpc.service import RpcService
from rpc.submitsync import DEFAULT_TIMEOUT, MAX_TIMEOUT, sync_timeout
from tests.rpc.conftest import RecordingSink, caller


class MiningSink:
    """A sink whose transactions a miner includes shortly after, as the master would."""

    def __init__(self, miner: DevMiner, delay: float) -> None:
        self.miner = miner
        self.delay = delay

    async def submit(self, raw_transaction: bytes, tx_hash: bytes, sender: bytes) -> None:
        asyncio.get_running_loop().call_later(self.delay, self.miner.mine, [raw_transaction])


def signed_transfer(nonce: int = 0) -> str:
    _, key = dev_accounts()[0]
    tx = Account.sign_transaction({
        "chainId": DEV_CHAIN_ID, "nonce": nonce, "gas": 21_000, "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9, "to": "0x" + "11" * 20, "value": 1,
    }, key)
    return "0x" + tx.raw_transaction.hex()


def dev_db() -> AtomicDB:
    db = AtomicDB()
    init_dev_chain(db)
    return db


async def test_the_answer_is_the_receipt_once_the_transaction_is_mined() -> None:
    db = dev_db()
    service = RpcService(db, tx_sink=MiningSink(DevMiner(db), delay=0.1))
    response = await caller(service)("eth_sendRawTransactionSync", signed_transfer())
    receipt = response["result"]
    assert (receipt["status"], receipt["blockNumber"]) == ("0x1", "0x1")
    assert receipt == (await caller(service)("eth_getTransactionReceipt", receipt["transactionHash"]))["result"]


async def test_a_transaction_not_mined_in_time_is_geths_error_4_with_its_hash() -> None:
    service = RpcService(dev_db(), tx_sink=RecordingSink())
    response = await caller(service)("eth_sendRawTransactionSync", signed_transfer(), "0x64")
    sent = (await caller(service)("eth_sendRawTransaction", signed_transfer()))["result"]
    assert response["error"] == {
        "code": 4, "data": sent,
        "message": "The transaction was added to the transaction pool but wasn't processed in 100ms.",
    }


def test_the_timeout_defaults_and_is_capped_like_geths() -> None:
    assert sync_timeout(None) == sync_timeout(0) == DEFAULT_TIMEOUT
    assert sync_timeout(1500) == 1.5
    assert sync_timeout(10**9) == MAX_TIMEOUT
