"""Filters shared by the cluster: installed through one replica, polled through any, on a real broker."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from chain.dev import dev_accounts
from deploy.localbroker import free_port
from tests.contracts import STORE_INIT, STORED_TOPIC
from tests.integration.harness import Cluster, Replica, post_json, wait_for

pytestmark = pytest.mark.broker


def master_rpc(port: int, method: str, *params: Any) -> Any:
    answer = post_json(f"http://127.0.0.1:{port}/", {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert "error" not in answer, answer
    return answer["result"]


def send(port: int, key: bytes, nonce: int, to: str | None, data: bytes, gas: int = 300_000) -> str:
    signed = Account.sign_transaction(
        {"to": to, "value": 0, "gas": gas, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
         "nonce": nonce, "chainId": 1337, "type": 2, "data": data},
        key,
    )
    return master_rpc(port, "eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())


def result(replica: Replica, method: str, *params: Any) -> Any:
    answer = replica.rpc(method, *params)
    assert "error" not in answer, (replica.replica_id, method, answer)
    return answer["result"]


def deploy(port: int, init: bytes, account: int = 0) -> tuple[str, bytes]:
    """Deploy ``init`` from dev account ``account`` (its first transaction); returns (address, the account's key)."""
    _, key = dev_accounts()[account]
    tx_hash = send(port, key, 0, None, init)
    receipt = wait_for(lambda: master_rpc(port, "eth_getTransactionReceipt", tx_hash), 10, "the deploy receipt")
    return Web3.to_checksum_address(receipt["contractAddress"]), key


def deploy_store(port: int, account: int = 0) -> tuple[str, bytes]:
    return deploy(port, STORE_INIT, account)


def assert_consecutive_from(port: int, blocks: list[str], before: int, installed_at: int) -> None:
    """``blocks`` are canonical hashes of consecutive blocks (each once, in order, no gap) that start
    right after the head at install (known to lie between ``before`` and ``installed_at``)."""
    first = int(master_rpc(port, "eth_getBlockByHash", blocks[0], False)["number"], 16)
    assert before + 1 <= first <= installed_at + 1
    expected = [master_rpc(port, "eth_getBlockByNumber", hex(n), False)["hash"] for n in range(first, first + len(blocks))]
    assert blocks == expected


def start_pair(cluster: Cluster, **extra: str) -> tuple[int, Replica, Replica]:
    port = free_port()
    cluster.start_dev_master(port, block_time=0.25)
    a, b = cluster.start_replicas("ra", "rb", **extra)
    a.wait_ready()
    b.wait_ready()
    return port, a, b


def test_filters_polled_alternately_through_two_replicas_see_every_block_and_log_once(cluster: Cluster) -> None:
    port, a, b = start_pair(cluster)
    contract, key = deploy_store(port)
    wait_for(lambda: a.rpc("eth_getCode", contract, "latest").get("result", "0x") != "0x", 10, "the contract on A")
    before = int(result(a, "eth_blockNumber"), 16)
    log_filter = result(a, "eth_newFilter", {"fromBlock": "0x0", "address": contract, "topics": ["0x" + STORED_TOPIC.hex()]})
    block_filter = result(a, "eth_newBlockFilter")
    assert len(log_filter) == 34 and log_filter != block_filter
    installed_at = int(result(a, "eth_blockNumber"), 16)

    blocks: list[str] = []
    logs: list[dict[str, Any]] = []
    values = [i.to_bytes(32, "big") for i in range(1, 21)]
    polls = 0
    started = time.monotonic()
    for nonce, value in enumerate(values, start=1):
        send(port, key, nonce, contract, value)
        for replica in (a, b):  # round robin, as a load balancer would
            blocks += result(replica, "eth_getFilterChanges", block_filter)
            logs += result(replica, "eth_getFilterChanges", log_filter)
            polls += 2
    head = int(master_rpc(port, "eth_blockNumber"), 16)

    def drained() -> bool:
        nonlocal blocks, logs
        for replica in (b, a):
            blocks += result(replica, "eth_getFilterChanges", block_filter)
            logs += result(replica, "eth_getFilterChanges", log_filter)
        return len(logs) >= len(values) and len(blocks) >= head - installed_at

    wait_for(drained, 15, "every event and block through the filters")
    elapsed = time.monotonic() - started
    print(f"\n{polls} polls alternating replicas in {elapsed:.1f}s; {len(blocks)} blocks, {len(logs)} logs")

    assert [bytes.fromhex(log["data"][2:]) for log in logs] == values
    assert all(log["address"].lower() == contract.lower() and not log["removed"] for log in logs)
    assert_consecutive_from(port, blocks, before, installed_at)
    assert result(b, "eth_getFilterLogs", log_filter) == logs  # the whole range: same logs

    # The installing replica dies; the filter lives on in the topic.
    a.stop(signal.SIGKILL)
    send(port, key, len(values) + 1, contract, b"\xff" * 32)
    late = wait_for(lambda: result(b, "eth_getFilterChanges", log_filter), 10, "a log after A died")
    assert [log["data"] for log in late] == ["0x" + "ff" * 32]
    assert result(b, "eth_uninstallFilter", log_filter) is True
    assert result(b, "eth_uninstallFilter", log_filter) is False


def test_idle_filter_expires_and_unknown_id_gets_geths_error(cluster: Cluster) -> None:
    port, a, b = start_pair(cluster, filter_timeout="2")
    kept = result(a, "eth_newBlockFilter")
    idle = result(a, "eth_newBlockFilter")
    for _ in range(6):  # polls keep `kept` alive across both replicas
        time.sleep(0.5)
        result(b if _ % 2 else a, "eth_getFilterChanges", kept)
    for replica in (a, b):
        answer = replica.rpc("eth_getFilterChanges", idle)
        assert answer["error"] == {"code": -32000, "message": "filter not found"}, answer
    assert isinstance(result(a, "eth_getFilterChanges", kept), list)
    unknown = "0x" + "ab" * 16
    assert b.rpc("eth_getFilterChanges", unknown)["error"] == {"code": -32000, "message": "filter not found"}
    assert b.rpc("eth_getFilterLogs", unknown)["error"] == {"code": -32000, "message": "filter not found"}
    assert result(b, "eth_uninstallFilter", unknown) is False


def test_pending_transaction_filter_sees_each_sent_transaction_once(cluster: Cluster) -> None:
    port, a, b = start_pair(cluster)
    pending_filter = result(a, "eth_newPendingTransactionFilter")
    _, key = dev_accounts()[1]
    sent = []
    for nonce in range(6):
        signed = Account.sign_transaction(
            {"to": "0x" + "11" * 20, "value": 1, "gas": 21_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
             "nonce": nonce, "chainId": 1337, "type": 2}, key)
        sent.append(result(a if nonce % 2 else b, "eth_sendRawTransaction", "0x" + signed.raw_transaction.hex()))
    seen: list[str] = []

    def all_seen() -> bool:
        for replica in (b, a):
            seen.extend(result(replica, "eth_getFilterChanges", pending_filter))
        return len(seen) >= len(sent)

    wait_for(all_seen, 10, "the pending hashes")
    assert sorted(seen) == sorted(sent)
