"""The replica's JSON-RPC end to end: master -> Kafka -> replica -> HTTP, with real clients."""

from __future__ import annotations

import asyncio

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError

from chain.dev import dev_accounts
from deploy.localbroker import free_port
from tests.contracts import REVERT_DATA, STORE_INIT, STORED_TOPIC
from tests.integration.harness import Cluster, assert_identical, master_sequence, wait_for
from tests.rpc.compat import SUPERSEDED, load_suite, pass_table, replay_suite

pytestmark = pytest.mark.broker


def test_rpc_compat_suite_passes_against_a_replica_fed_over_kafka(cluster: Cluster) -> None:
    cluster.import_compat_chain()
    cluster.start_dev_master(free_port(), dev=False)
    replica = cluster.start_replica("r1")
    replica.wait_ready()
    results = asyncio.run(replay_suite(replica.url + "/", [case for case in load_suite() if case.id not in SUPERSEDED]))
    print("\n" + pass_table(results))
    failed = [f"{r.case.id}: {r.detail}" for r in results if not r.passed]
    assert not failed and len(results) >= 96


def send(w3: Web3, key: bytes, nonce: int, to: str | None, data: bytes = b"", value: int = 0) -> bytes:
    signed = Account.sign_transaction(
        {"to": to, "value": value, "gas": 300_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
         "nonce": nonce, "chainId": 1337, "type": 2, "data": data},
        key,
    )
    return bytes(w3.eth.send_raw_transaction(signed.raw_transaction))


def test_web3_reads_a_replica_of_the_dev_master(cluster: Cluster) -> None:
    master_port = free_port()
    cluster.start_dev_master(master_port)
    replica = cluster.start_replica("r1")
    replica.wait_ready()
    master = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{master_port}/"))
    w3 = Web3(Web3.HTTPProvider(replica.url + "/"))
    (sender, key), (receiver, _) = dev_accounts()[:2]
    sender_address, receiver_address = Web3.to_checksum_address(sender), Web3.to_checksum_address(receiver)

    deploy_hash = send(master, key, 0, None, STORE_INIT)
    contract = master.eth.get_transaction_receipt(deploy_hash)["contractAddress"]
    store_hash = send(master, key, 1, contract, b"\x2a" * 32)
    transfer_hash = send(master, key, 2, receiver_address, value=10**18)
    head = master.eth.block_number
    wait_for(lambda: replica.rpc("eth_blockNumber").get("result") == hex(head), 30, "the replica to reach the master's head")

    assert w3.eth.chain_id == 1337 and w3.eth.block_number == head
    assert w3.eth.get_balance(receiver_address) == master.eth.get_balance(receiver_address) == 10**24 + 10**18
    block = w3.eth.get_block(head, full_transactions=True)
    assert block == master.eth.get_block(head, full_transactions=True)
    assert block["transactions"][0]["hash"] == transfer_hash
    receipt = w3.eth.get_transaction_receipt(store_hash)
    assert receipt["status"] == 1 and receipt == master.eth.get_transaction_receipt(store_hash)
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": contract, "topics": [STORED_TOPIC]})
    assert [bytes(log["data"]) for log in logs] == [b"\x2a" * 32] and logs[0]["transactionHash"] == store_hash
    assert w3.eth.call({"to": contract, "data": "0x00"}) == b"\x2a" * 32
    assert w3.eth.get_transaction_count(sender_address) == 3
    with pytest.raises(ContractLogicError) as reverted:
        w3.eth.call({"to": contract, "from": sender_address})
    assert reverted.value.data == "0x" + REVERT_DATA.hex()
    trace_args = ["0x" + store_hash.hex(), {"tracer": "callTracer", "tracerConfig": {"withLog": True}}]
    trace = w3.provider.make_request("debug_traceTransaction", trace_args)["result"]
    assert trace == master.provider.make_request("debug_traceTransaction", trace_args)["result"]
    assert (trace["to"], trace["logs"][0]["data"]) == (contract.lower(), "0x" + "2a" * 32)


def test_replica_matches_a_dev_master_mining_fifty_blocks_of_transactions(cluster: Cluster) -> None:
    master_port = free_port()
    master_process = cluster.start_dev_master(master_port)
    replica = cluster.start_replica("r1")
    master = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{master_port}/"))
    accounts = dev_accounts()
    for block in range(50):
        for index, (_, key) in enumerate(accounts[:3]):
            send(master, key, block, Web3.to_checksum_address(accounts[(index + 1) % 10][0]), value=block + 1)
    assert master.eth.block_number >= 50
    master_process.terminate()
    master_process.wait(15)
    replica.wait_sequence(master_sequence(cluster.master_dir))
    replica.stop()
    assert_identical(cluster.master_dir, cluster.replica_dir("r1"))
