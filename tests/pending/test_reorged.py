"""A reorg's dropped transactions become pending again on every replica, derived from the chain alone."""

from __future__ import annotations

from eth.db.atomic import AtomicDB
from eth_account import Account

from chain.dev import DevMiner, dev_accounts, init_dev_chain
from chain.live import rewind
from pending.chainview import ChainView
from pending.reorged import ReorgWatch

BEEF = "0x000000000000000000000000000000000000bEEF"


def transfer(account: int, nonce: int, value: int = 1) -> bytes:
    tx = {"chainId": 1337, "nonce": nonce, "to": BEEF, "value": value, "gas": 21_000, "type": 2,
          "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    return bytes(Account.sign_transaction(tx, dev_accounts()[account][1]).raw_transaction)


def chain_with_a_transfer_in_block_3() -> tuple[AtomicDB, bytes]:
    db = AtomicDB()
    init_dev_chain(db)
    miner = DevMiner(db)
    miner.mine([transfer(0, 0)], timestamp=1)
    miner.mine([transfer(0, 1)], timestamp=2)
    raw = transfer(0, 2)
    miner.mine([raw], timestamp=3)
    return db, raw


def test_a_transaction_of_a_dropped_block_is_pending_again() -> None:
    db, raw = chain_with_a_transfer_in_block_3()
    view, watch = ChainView(db), ReorgWatch(clock=lambda: 1000.0)
    assert watch.dropped(view) == []
    rewind(db, 2)
    DevMiner(db).mine([transfer(1, 0)], timestamp=30)
    entries = watch.dropped(view)
    assert [(entry.raw, entry.nonce, entry.received_at) for entry in entries] == [(raw, 2, 1000.0)]
    assert watch.dropped(view) == []


def test_a_dropped_transaction_the_new_branch_holds_is_not_pending() -> None:
    db, raw = chain_with_a_transfer_in_block_3()
    view, watch = ChainView(db), ReorgWatch()
    watch.dropped(view)
    rewind(db, 2)
    DevMiner(db).mine([raw], timestamp=30)
    assert watch.dropped(view) == []
