"""Block, transaction, state, log and fee reads beyond what the rpc-compat suite covers."""

from __future__ import annotations

import pytest
from eth.db.atomic import AtomicDB

from chain.dev import DevMiner, init_dev_chain
from rpc.backend import SyncProgress
from rpc.limits import RpcLimits
from rpc.service import RpcService
from tests.rpc.conftest import Call, caller

BLOCK_3 = "0x30adf30837c967524cbcf881c024c194eee010b3750feef2e45a674979b2cd36"


async def test_uncle_is_a_header_shaped_block_without_transactions(compat_call: Call) -> None:
    count = await compat_call("eth_getUncleCountByBlockNumber", "0x3")
    uncle = await compat_call("eth_getUncleByBlockHashAndIndex", BLOCK_3, "0x0")
    assert count["result"] == "0x1"
    assert "transactions" not in uncle["result"] and uncle["result"]["uncles"] == []
    assert int(uncle["result"]["number"], 16) <= 3


async def test_uncle_index_out_of_range_is_null(compat_call: Call) -> None:
    assert (await compat_call("eth_getUncleByBlockNumberAndIndex", "0x3", "0x1"))["result"] is None


async def test_block_hash_of_uncle_lists_it(compat_call: Call) -> None:
    block = await compat_call("eth_getBlockByNumber", "0x3", False)
    uncle = await compat_call("eth_getUncleByBlockNumberAndIndex", "0x3", "0x0")
    assert block["result"]["uncles"] == [uncle["result"]["hash"]]


async def test_raw_transaction_of_unknown_hash_is_empty_bytes(compat_call: Call) -> None:
    assert (await compat_call("eth_getRawTransactionByHash", "0x" + "00" * 32))["result"] == "0x"


async def test_balance_above_head_is_header_not_found(compat_call: Call) -> None:
    response = await compat_call("eth_getBalance", "0x" + "00" * 20, "0x2e")
    assert response["error"] == {"code": -32000, "message": "header not found"}


async def test_balance_by_unknown_hash_is_header_for_hash_not_found(compat_call: Call) -> None:
    response = await compat_call("eth_getBalance", "0x" + "00" * 20, {"blockHash": "0x" + "11" * 32})
    assert response["error"] == {"code": -32000, "message": "header for hash not found"}


async def test_proof_of_missing_account_has_zero_hashes(compat_call: Call) -> None:
    response = await compat_call("eth_getProof", "0x" + "c1" * 20, ["0x01"], "latest")
    result = response["result"]
    assert result["codeHash"] == result["storageHash"] == "0x" + "00" * 32
    assert result["storageProof"] == [{"key": "0x1", "value": "0x0", "proof": []}]
    assert result["accountProof"]


async def test_logs_range_over_the_limit_is_refused(compat_db: AtomicDB) -> None:
    call = caller(RpcService(compat_db, limits=RpcLimits(logs_max_block_range=10)))
    response = await call("eth_getLogs", {"fromBlock": "0x0", "toBlock": "0x20"})
    assert response["error"] == {"code": -32000, "message": "exceed maximum block range: 10"}


async def test_logs_over_the_result_limit_are_refused(compat_db: AtomicDB) -> None:
    call = caller(RpcService(compat_db, limits=RpcLimits(logs_max_results=2)))
    response = await call("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest"})
    assert response["error"] == {"code": -32000, "message": "query returned more than 2 results"}


async def test_logs_by_unknown_block_hash_is_unknown_block(compat_call: Call) -> None:
    response = await compat_call("eth_getLogs", {"blockHash": "0x" + "11" * 32})
    assert response["error"] == {"code": -32000, "message": "unknown block"}


async def test_logs_with_reversed_range_are_invalid(compat_call: Call) -> None:
    response = await compat_call("eth_getLogs", {"fromBlock": "0x5", "toBlock": "0x2"})
    assert response["error"] == {"code": -32602, "message": "invalid block range params"}


async def test_logs_by_block_hash_equal_logs_by_its_number(compat_call: Call) -> None:
    block = await compat_call("eth_getBlockByNumber", "0x2", False)
    by_hash = await compat_call("eth_getLogs", {"blockHash": block["result"]["hash"]})
    by_number = await compat_call("eth_getLogs", {"fromBlock": "0x2", "toBlock": "0x2"})
    assert by_hash["result"] == by_number["result"] and by_hash["result"]


async def test_gas_price_is_suggested_tip_plus_head_base_fee(compat_call: Call) -> None:
    tip = int((await compat_call("eth_maxPriorityFeePerGas"))["result"], 16)
    price = int((await compat_call("eth_gasPrice"))["result"], 16)
    head = await compat_call("eth_getBlockByNumber", "latest", False)
    assert price == tip + int(head["result"]["baseFeePerGas"], 16)
    assert tip == RpcLimits().gas_price_default_tip  # every tip on this chain is dust (1 wei)


async def test_fee_history_beyond_head_is_refused(compat_call: Call) -> None:
    response = await compat_call("eth_feeHistory", "0x1", "0x100", [])
    assert response["error"] == {"code": -32000, "message": "request beyond head block: requested 256, head 45"}


async def test_fee_history_percentiles_must_increase(compat_call: Call) -> None:
    response = await compat_call("eth_feeHistory", "0x2", "latest", [50, 10])
    assert response["error"]["message"] == "invalid reward percentile: #0:50.000000 >= #1:10.000000"


async def test_fee_history_of_zero_blocks_is_empty(compat_call: Call) -> None:
    assert (await compat_call("eth_feeHistory", "0x0", "latest", []))["result"] == {
        "oldestBlock": "0x0", "gasUsedRatio": None}


async def test_syncing_reports_the_replicas_progress(compat_db: AtomicDB) -> None:
    class Catching:
        def progress(self) -> SyncProgress | None:
            return SyncProgress(starting_block=3, current_block=10, highest_block=45)

    call = caller(RpcService(compat_db, sync_status=Catching()))
    assert (await call("eth_syncing"))["result"] == {
        "startingBlock": "0x3", "currentBlock": "0xa", "highestBlock": "0x2d"}


async def test_send_raw_transaction_without_a_sink_is_refused(compat_db: AtomicDB) -> None:
    response = await caller(RpcService(compat_db))("eth_sendRawTransaction", "0x00")
    assert response["error"]["code"] == -32000


async def test_new_head_written_underneath_is_served_at_once() -> None:
    db = AtomicDB()
    init_dev_chain(db)
    service = RpcService(db)
    call = caller(service)
    assert (await call("eth_blockNumber"))["result"] == "0x0"
    DevMiner(db).mine([])
    service.invalidate()
    assert (await call("eth_blockNumber"))["result"] == "0x1"
    assert (await call("eth_getBlockByNumber", "latest", False))["result"]["number"] == "0x1"


async def test_empty_database_is_not_ready() -> None:
    response = await caller(RpcService(AtomicDB()))("eth_blockNumber")
    assert response["error"] == {"code": -32000, "message": "replica not ready: the database holds no chain yet"}


@pytest.mark.parametrize("method", ["net_listening", "eth_mining", "eth_accounts", "net_peerCount", "txpool_status"])
async def test_replica_stubs_answer_like_an_idle_node(compat_call: Call, method: str) -> None:
    assert "result" in await compat_call(method)


async def test_a_log_filter_naming_more_than_1000_addresses_is_invalid_params(compat_call: Call) -> None:
    response = await compat_call("eth_getLogs", {"address": ["0x" + "00" * 20] * 1001})
    assert response["error"] == {"code": -32602, "message": "invalid argument 0: exceed max addresses"}


async def test_a_topic_position_with_more_than_1000_alternatives_is_invalid_params(compat_call: Call) -> None:
    response = await compat_call("eth_getLogs", {"topics": [["0x" + "00" * 32] * 1001]})
    assert response["error"] == {"code": -32602, "message": "invalid argument 0: exceed max subtopics"}


async def test_receipts_carry_their_fields_in_gos_sorted_key_order(compat_call: Call) -> None:
    receipts = [receipt for number in range(46)
                for receipt in (await compat_call("eth_getBlockReceipts", hex(number)))["result"]]
    kinds = {(receipt["type"], receipt["contractAddress"] is None, "blobGasUsed" in receipt) for receipt in receipts}
    assert {("0x0", False, False), ("0x3", True, True)} <= kinds  # creations and blob transactions among them
    assert [list(receipt) for receipt in receipts] == [sorted(receipt) for receipt in receipts]
