"""The pending view: entries by hash and (sender, nonce), the pending nonce, pruning and expiry."""

from __future__ import annotations

from eth.db.atomic import AtomicDB
from eth_account import Account

from chain.dev import DEV_PRIVATE_KEYS, DevMiner, init_dev_chain
from pending.chainview import ChainView
from pending.pool import PendingPool, parse

KEY = DEV_PRIVATE_KEYS[0]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def raw(nonce: int, value: int = 1) -> bytes:
    tx = dict(nonce=nonce, to="0x000000000000000000000000000000000000dEaD", value=value, gas=21_000,
              maxFeePerGas=10**10, maxPriorityFeePerGas=10**9, chainId=1337)
    return bytes(Account.from_key(KEY).sign_transaction(tx).raw_transaction)


def chain() -> tuple[AtomicDB, ChainView]:
    db = AtomicDB()
    init_dev_chain(db)
    return db, ChainView(db)


def test_pending_nonce_moves_past_contiguous_nonces_only() -> None:
    _, view = chain()
    clock = Clock()
    pool = PendingPool(ttl=60, clock=clock)
    for nonce in (0, 1, 3):
        assert pool.add(parse(raw(nonce), clock.now, view.decode))
    sender = bytes.fromhex(Account.from_key(KEY).address[2:])
    assert pool.next_nonce(sender, 0) == 2
    assert pool.next_nonce(sender, 3) == 4
    assert pool.next_nonce(b"\x01" * 20, 7) == 7
    entry = parse(raw(0), clock.now, view.decode)
    assert entry.sender == sender
    assert not pool.add(entry)  # already there
    assert pool.get(entry.tx_hash) == (entry.transaction, sender)
    assert [tx.nonce for tx, _ in pool.transactions()] == [0, 1, 3]


def test_replacements_share_a_nonce_and_leave_one_by_one() -> None:
    _, view = chain()
    pool = PendingPool(ttl=60)
    first, second = parse(raw(0, 1), 1e12, view.decode), parse(raw(0, 2), 1e12, view.decode)
    assert pool.add(first) and pool.add(second)
    assert pool.next_nonce(first.sender, 0) == 1
    pool.discard(first.tx_hash)
    assert pool.next_nonce(first.sender, 0) == 1
    pool.discard(second.tx_hash)
    assert pool.next_nonce(first.sender, 0) == 0 and len(pool) == 0


def test_entries_expire_after_the_ttl_and_old_records_are_not_added() -> None:
    _, view = chain()
    clock = Clock()
    pool = PendingPool(ttl=60, clock=clock)
    assert pool.add(parse(raw(0), clock.now, view.decode))
    assert not pool.add(parse(raw(1), clock.now - 61, view.decode))
    clock.now += 59
    assert pool.expire() == 0
    clock.now += 2
    assert pool.expire() == 1 and len(pool) == 0


def test_a_dropped_transaction_is_not_added_again() -> None:
    _, view = chain()
    pool = PendingPool(ttl=60)
    entry = parse(raw(0), 1e12, view.decode)
    pool.add(entry)
    pool.drop(entry.tx_hash)
    assert not pool.known(entry.tx_hash)
    assert not pool.add(entry)


def test_prune_drops_what_an_applied_block_included_and_nonces_it_used() -> None:
    db, view = chain()
    pool = PendingPool(ttl=3600)
    mined, replaced, later = raw(0, 1), raw(0, 2), raw(1)
    for tx in (mined, replaced, later):
        pool.add(parse(tx, 1e12, view.decode))
    DevMiner(db).mine([mined])
    assert pool.prune(view.included, view.nonce) == 2  # the mined one, and the one whose nonce it used
    assert [tx.nonce for tx, _ in pool.transactions()] == [1]
    sender = pool.entries()[0].sender
    assert view.nonce(sender) == 1 and pool.next_nonce(sender, 1) == 2
