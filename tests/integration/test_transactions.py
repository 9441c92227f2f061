"""Transactions end to end: replicas -> transaction topic -> emitter -> dev master -> CDC -> replicas.

The emitter's target is a counting proxy in front of the dev master, so a test
can take the target down (connection refused) and count every
``eth_sendRawTransaction`` that reached it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
import rlp
from aiokafka import AIOKafkaConsumer, TopicPartition
from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.middleware import SignAndSendRawMiddlewareBuilder

from chain.dev import DEV_PRIVATE_KEYS
from chain.transactions import (CELLS_PER_EXT_BLOB, BlobSidecar, encode_network_form, kzg_to_versioned_hash,
                                split_network_form)
from deploy.localbroker import LocalBroker, free_port
from cluster.topics import TopicNames
from tests.integration.harness import Cluster, Replica, post_json, produce_raw, wait_for
from tests.integration.upstream import BLOB, BLOB_COMMITMENT, BLOB_PROOF

pytestmark = pytest.mark.broker

CHAIN_ID = 1337
RECIPIENT = "0x000000000000000000000000000000000000dEaD"
GWEI = 10**9


# --- a counting, stoppable emitter target ---------------------------------------------


class CountingTarget:
    """An HTTP JSON-RPC proxy to ``upstream`` that counts eth_sendRawTransaction by tx hash.

    ``down()`` closes the port (the emitter sees "connection refused"), ``up()``
    listens on the same port again.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.sends: dict[str, int] = {}
        self.refused_while_down = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sent(self, tx_hash: str) -> int:
        with self._lock:
            return self.sends.get(tx_hash.lower(), 0)

    def up(self) -> "CountingTarget":
        target = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target._count(body)
                request = urllib.request.Request(target.upstream, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = response.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _count(self, body: bytes) -> None:
        calls = json.loads(body)
        for call in calls if isinstance(calls, list) else [calls]:
            if call.get("method") == "eth_sendRawTransaction":
                raw = bytes.fromhex(call["params"][0][2:])
                with self._lock:
                    key = "0x" + keccak(raw).hex()
                    self.sends[key] = self.sends.get(key, 0) + 1


# --- helpers ----------------------------------------------------------------------------


def topic_records(broker: LocalBroker, topic: str) -> list[Any]:
    """Every record of ``topic`` (small test topics), read to the fetch's high watermark."""

    async def read() -> list[Any]:
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.url.removeprefix("kafka://"), enable_auto_commit=False,
                                    fetch_max_wait_ms=20)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not partitions:
                await consumer._client.force_metadata_update()
                partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            records: list[Any] = []
            done: set[TopicPartition] = set()
            deadline = time.monotonic() + 10
            while len(done) < len(partitions) and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=100)
                for tp, batch in batches.items():
                    records += batch
                for tp in partitions:
                    end = consumer.highwater(tp)
                    if end is not None and await consumer.position(tp) >= end:
                        done.add(tp)
            return records
        finally:
            await consumer.stop()

    return asyncio.run(read())


def account(index: int) -> Any:
    return Account.from_key(DEV_PRIVATE_KEYS[index])


def signed(index: int, nonce: int, **fields: Any) -> str:
    """A signed EIP-1559 transfer from dev account ``index`` (fields override)."""
    tx: dict[str, Any] = dict(nonce=nonce, to=RECIPIENT, value=1, gas=21_000, maxFeePerGas=20 * GWEI,
                              maxPriorityFeePerGas=GWEI, chainId=CHAIN_ID)
    tx.update(fields)
    if "gasPrice" in tx:
        tx.pop("maxFeePerGas"), tx.pop("maxPriorityFeePerGas")
    return "0x" + account(index).sign_transaction(tx).raw_transaction.hex()


def unrecoverable(raw_hex: str) -> str:
    """A typed transaction whose signature's r (5) is no curve point: no sender can be recovered."""
    fields = rlp.decode(bytes.fromhex(raw_hex[4:]))
    return raw_hex[:4] + rlp.encode(fields[:-2] + [b"\x05", fields[-1]]).hex()


def tx_hash_of(raw_hex: str) -> str:
    return "0x" + keccak(bytes.fromhex(raw_hex[2:])).hex()


def wait_receipt(replica: Replica, tx_hash: str, timeout: float = 30) -> dict[str, Any]:
    return wait_for(lambda: replica.rpc("eth_getTransactionReceipt", tx_hash).get("result"), timeout,
                    f"the receipt of {tx_hash} on {replica.replica_id}")


def nonce(replica: Replica, index: int, tag: str = "latest") -> int:
    return int(replica.rpc("eth_getTransactionCount", account(index).address, tag)["result"], 16)


# --- the shared cluster: a dev master, replica a (emitter -> counting target), replica b ---------


@dataclass
class TxCluster:
    cluster: Cluster
    broker: LocalBroker
    target: CountingTarget
    a: Replica
    b: Replica

    @property
    def names(self) -> TopicNames:
        return TopicNames(self.cluster.name)


def start_tx_cluster(broker: LocalBroker, root: Path, **emitter: str) -> tuple[Cluster, CountingTarget, Replica]:
    cluster = Cluster(broker.url, root)
    master_port = free_port()
    cluster.start_dev_master(master_port)
    target = CountingTarget(f"http://127.0.0.1:{master_port}/").up()
    a = cluster.start_replica("a", emit_targets=target.url, emit_retry_initial="0.1", emit_retry_max="0.5", **emitter)
    a.wait_ready()
    wait_for(lambda: "emitter default: assigned" in a.log(), 60, "the emitter's partitions")
    return cluster, target, a


@pytest.fixture(scope="module")
def txc(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TxCluster]:
    cluster, target, a = start_tx_cluster(broker, tmp_path_factory.mktemp("txcluster"))
    try:
        b = cluster.start_replica("b")
        b.wait_ready()
        yield TxCluster(cluster, broker, target, a, b)
    finally:
        cluster.stop_all()
        target.down()


# --- the tests ----------------------------------------------------------------------------------


def test_web3_transactions_are_mined_and_their_receipts_served_by_another_replica(txc: TxCluster) -> None:
    w3 = Web3(Web3.HTTPProvider(txc.a.url))
    sender = account(0)
    assert w3.eth.chain_id == CHAIN_ID
    first = w3.eth.get_transaction_count(sender.address, "pending")
    sent = []
    for offset, fields in enumerate([
        {"maxFeePerGas": w3.to_wei(30, "gwei"), "maxPriorityFeePerGas": w3.eth.max_priority_fee},  # EIP-1559
        {"gasPrice": w3.eth.gas_price},  # legacy
        {"gasPrice": w3.eth.gas_price, "accessList": [{"address": RECIPIENT, "storageKeys": []}], "type": 1},  # EIP-2930
    ]):
        tx = {"to": RECIPIENT, "value": 1000 + offset, "gas": 30_000, "nonce": first + offset, "chainId": CHAIN_ID, **fields}
        sent.append(w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))
    other = Web3(Web3.HTTPProvider(txc.b.url))
    receipts = [other.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05) for tx_hash in sent]
    assert [r["status"] for r in receipts] == [1, 1, 1]
    assert [other.eth.get_transaction(h)["nonce"] for h in sent] == [first, first + 1, first + 2]
    assert other.eth.get_transaction_count(sender.address) == first + 3
    assert all(txc.target.sent(h.to_0x_hex()) == 1 for h in sent)


def test_back_to_back_sends_through_two_replicas_get_consecutive_nonces(txc: TxCluster) -> None:
    sender = account(1)
    clients = []
    for replica in (txc.a, txc.b):
        w3 = Web3(Web3.HTTPProvider(replica.url))
        w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(sender), layer=0)
        clients.append(w3)
    before = clients[0].eth.get_transaction_count(sender.address)
    first = clients[0].eth.send_transaction({"from": sender.address, "to": RECIPIENT, "value": 1})
    second = clients[1].eth.send_transaction({"from": sender.address, "to": RECIPIENT, "value": 2})
    receipts = [clients[1].eth.wait_for_transaction_receipt(h, timeout=30, poll_latency=0.05) for h in (first, second)]
    assert [r["status"] for r in receipts] == [1, 1]
    assert [clients[0].eth.get_transaction(h)["nonce"] for h in (first, second)] == [before, before + 1]


def test_a_pending_transaction_is_visible_on_every_replica_until_mined(txc: TxCluster) -> None:
    sender = account(2)
    txc.target.down()  # hold it pending
    try:
        n = nonce(txc.a, 2)
        raw = signed(2, n)
        tx_hash = txc.b.rpc("eth_sendRawTransaction", raw)["result"]
        for replica in (txc.a, txc.b):
            found = wait_for(lambda: replica.rpc("eth_getTransactionByHash", tx_hash).get("result"), 10,
                             f"the pending transaction on {replica.replica_id}")
            assert found["blockHash"] is None and found["from"].lower() == sender.address.lower()
            assert nonce(replica, 2, "pending") == n + 1
            content = replica.rpc("txpool_content")["result"]
            assert content["pending"][sender.address][str(n)]["hash"] == tx_hash
            assert int(replica.rpc("txpool_status")["result"]["pending"], 16) >= 1
    finally:
        txc.target.up()
    wait_receipt(txc.b, tx_hash)
    wait_for(lambda: txc.a.rpc("eth_getTransactionByHash", tx_hash)["result"]["blockHash"] is not None, 10, "the mined view")
    assert nonce(txc.b, 2, "pending") == n + 1


INVALID: list[tuple[str, Any, str]] = [
    ("wrong chain id", lambda n: signed(3, n, chainId=5), "invalid chain id for signer"),
    ("intrinsic gas", lambda n: signed(3, n, gas=20_999), "intrinsic gas too low: gas 20999, minimum needed 21000"),
    ("nonce too low", lambda n: signed(3, n - 1), "nonce too low: next nonce {n}, tx nonce {m}"),
    ("insufficient funds", lambda n: signed(3, n, value=10**30), "insufficient funds for gas * price + value"),
    ("tip above fee cap", lambda n: signed(3, n, maxFeePerGas=GWEI, maxPriorityFeePerGas=2 * GWEI),
     "max priority fee per gas higher than max fee per gas"),
    ("oversized", lambda n: signed(3, n, gas=5_000_000, data=b"\x01" * 140_000, maxFeePerGas=GWEI,
                                   maxPriorityFeePerGas=GWEI), "oversized data: transaction size"),
    ("gas above block limit", lambda n: signed(3, n, gas=40_000_000, maxFeePerGas=GWEI // 100, maxPriorityFeePerGas=1),
     "exceeds block gas limit"),
    ("fee cap", lambda n: signed(3, n, maxFeePerGas=10**14), "exceeds the configured cap"),
    ("bad signature", lambda n: unrecoverable(signed(3, n)), "invalid sender"),
    ("not a transaction", lambda n: "0x02c0", "rlp"),
]


def test_each_invalid_transaction_gets_its_error_and_produces_no_record(txc: TxCluster) -> None:
    # Account 3 has sent one transaction, so "nonce too low" has a nonce to be too low for.
    first = txc.a.rpc("eth_sendRawTransaction", signed(3, nonce(txc.a, 3)))["result"]
    wait_receipt(txc.a, first)
    n = nonce(txc.a, 3)
    before = len(topic_records(txc.broker, txc.names.transactions))
    for name, make, expected in INVALID:
        answer = txc.a.rpc("eth_sendRawTransaction", make(n))
        assert "error" in answer, f"{name}: accepted"
        assert expected.format(n=n, m=n - 1) in answer["error"]["message"], f"{name}: {answer['error']}"
    valid = signed(3, n)
    txc.target.down()  # keep it pending while it is sent again
    try:
        assert txc.b.rpc("eth_sendRawTransaction", valid)["result"] == tx_hash_of(valid)
        wait_for(lambda: txc.a.rpc("eth_getTransactionByHash", tx_hash_of(valid)).get("result"), 10, "the pending view")
        for replica in (txc.a, txc.b):  # already known: the hash again, and no second record
            assert replica.rpc("eth_sendRawTransaction", valid)["result"] == tx_hash_of(valid)
    finally:
        txc.target.up()
    wait_receipt(txc.a, tx_hash_of(valid))
    assert len(topic_records(txc.broker, txc.names.transactions)) == before + 1
    assert txc.target.sent(tx_hash_of(valid)) == 1


def test_a_version_0_blob_sidecar_goes_on_the_topic_with_cell_proofs_and_is_mined(txc: TxCluster) -> None:
    """The dev chain runs Osaka: the replica converts the sidecar in its KZG worker process (spawned
    inside the Faust worker), the master's RPC verifies the cell proofs it is forwarded, and mines it."""
    fields = dict(type=3, maxFeePerBlobGas=10**10, blobVersionedHashes=[kzg_to_versioned_hash(BLOB_COMMITMENT)])
    canonical = bytes.fromhex(signed(6, nonce(txc.a, 6), **fields)[2:])
    version_0 = encode_network_form(canonical, BlobSidecar((BLOB,), (BLOB_COMMITMENT,), (BLOB_PROOF,)))
    send = {"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": ["0x" + version_0.hex()]}

    tx_hash = post_json(txc.a.url + "/", send, timeout=60)["result"]  # the first call spawns the worker

    assert tx_hash == "0x" + keccak(canonical).hex()
    assert wait_receipt(txc.b, tx_hash)["blobGasUsed"] == hex(2**17)
    [record] = [record.value for record in topic_records(txc.broker, txc.names.transactions)
                if keccak(split_network_form(record.value)[0]) == keccak(canonical)]
    forwarded = split_network_form(record)[1]
    assert forwarded is not None and forwarded.version == 1 and forwarded.blobs == (BLOB,)


def test_a_blob_record_forged_on_the_topic_is_refused_by_the_master_and_dead_lettered(txc: TxCluster) -> None:
    """Anyone who reaches the broker can write the transaction topic: the master's RPC, where the
    emitter forwards, is where a sidecar is checked (in its KZG worker), and the one check it gets."""
    fields = dict(type=3, maxFeePerBlobGas=10**10, blobVersionedHashes=[kzg_to_versioned_hash(BLOB_COMMITMENT)])
    canonical = bytes.fromhex(signed(8, nonce(txc.a, 8), **fields)[2:])
    infinity = b"\xc0" + bytes(47)  # a well-formed cell proof, not one of this blob's
    forged = encode_network_form(canonical, BlobSidecar((BLOB,), (BLOB_COMMITMENT,), (infinity,) * CELLS_PER_EXT_BLOB,
                                                        version=1))
    tx_hash = "0x" + keccak(canonical).hex()

    asyncio.run(produce_raw(txc.broker.url, txc.names.transactions, forged))

    def dead() -> Any:
        letters = [json.loads(r.value) for r in topic_records(txc.broker, txc.names.dead_letters)]
        return next((letter for letter in letters if letter["hash"] == tx_hash), None)

    letter = wait_for(dead, 30, "the dead letter")  # the master's first blob check spawns its worker
    assert "blob KZG proofs do not verify" in letter["reason"], letter
    assert txc.b.rpc("eth_getTransactionReceipt", tx_hash)["result"] is None


def test_a_down_target_is_retried_and_a_rejected_transaction_is_dead_lettered(txc: TxCluster) -> None:
    n = nonce(txc.a, 4)
    txc.target.down()
    raw = signed(4, n)
    tx_hash = txc.a.rpc("eth_sendRawTransaction", raw)["result"]
    retried = lambda: "retrying in" in txc.a.log() and tx_hash[2:] in txc.a.log()  # noqa: E731
    wait_for(retried, 10, "the emitter to retry")
    time.sleep(1.0)
    assert txc.a.rpc("eth_getTransactionReceipt", tx_hash)["result"] is None
    txc.target.up()
    wait_receipt(txc.b, tx_hash)

    # Two transactions with one nonce: both valid at the replica, the second one too late at the master.
    n += 1
    winner, loser = signed(4, n, value=1), signed(4, n, value=2)
    assert txc.a.rpc("eth_sendRawTransaction", winner)["result"] == tx_hash_of(winner)
    assert txc.a.rpc("eth_sendRawTransaction", loser)["result"] == tx_hash_of(loser)
    wait_receipt(txc.b, tx_hash_of(winner))

    def dead() -> Any:
        letters = [json.loads(r.value) for r in topic_records(txc.broker, txc.names.dead_letters)]
        return next((letter for letter in letters if letter["hash"] == tx_hash_of(loser)), None)

    letter = wait_for(dead, 20, "the dead letter")
    assert "nonce" in letter["reason"].lower(), letter
    assert letter["sender"] == account(4).address.lower() and letter["raw"] == loser
    wait_for(lambda: txc.b.rpc("eth_getTransactionByHash", tx_hash_of(loser))["result"] is None, 10,
             "the dead-lettered transaction to leave the pending view")
    metrics = urllib.request.urlopen(f"{txc.a.url}/metrics", timeout=5).read().decode()
    assert "ethercattle_emitter_retried_total" in metrics and "ethercattle_emitter_rejected_total" in metrics


def test_restarting_an_emitter_does_not_send_a_transaction_twice(broker: LocalBroker, tmp_path: Path) -> None:
    # Offsets are committed only after an hour: after a kill, every record is read again and the
    # emitter's table alone keeps them from being sent twice.
    cluster, target, a = start_tx_cluster(broker, tmp_path, emit_commit_interval="3600")
    try:
        n = nonce(a, 5)
        hashes = [a.rpc("eth_sendRawTransaction", signed(5, n + i))["result"] for i in range(3)]
        for tx_hash in hashes:
            wait_receipt(a, tx_hash)
        wait_for(lambda: a.log().count("delivered to") >= 3, 10, "the emitter's log")
        time.sleep(0.5)  # the table rows are flushed before the next record; the last one, now
        a.stop(signal.SIGKILL)
        a = cluster.start_replica("a", emit_targets=target.url, emit_commit_interval="3600")
        a.wait_ready()
        wait_for(lambda: a.log().count("already settled by this emitter") >= 3, 60, "the restarted emitter to skip them")
        assert [target.sent(h) for h in hashes] == [1, 1, 1]
        after = a.rpc("eth_sendRawTransaction", signed(5, n + 3))["result"]
        wait_receipt(a, after)
        assert target.sent(after) == 1
    finally:
        cluster.stop_all()
        target.down()
