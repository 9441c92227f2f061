"""eth_sendRawTransaction: a blob transaction's sidecar must verify before it reaches the topic."""

from __future__ import annotations

import json

from rpc.service import RpcService
from tests.rpc.compat import SUITE
from tests.rpc.conftest import RecordingSink


def blob_transaction() -> bytes:
    request = (SUITE / "eth_sendRawTransaction" / "send-blob-tx.io").read_text().split(">> ", 1)[1].splitlines()[0]
    return bytes.fromhex(json.loads(request)["params"][0][2:])


async def send(service: RpcService, raw: bytes) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": ["0x" + raw.hex()]}
    return json.loads(await service.handle_body(json.dumps(body).encode()) or b"null")


async def test_blob_transaction_with_a_valid_sidecar_is_accepted(compat_db: object) -> None:
    sink = RecordingSink()
    answer = await send(RpcService(compat_db, tx_sink=sink), blob_transaction())  # type: ignore[arg-type]
    assert "result" in answer and len(sink.submitted) == 1


async def test_blob_transaction_whose_kzg_proof_does_not_verify_is_refused_and_not_submitted(compat_db: object) -> None:
    sink = RecordingSink()
    forged = bytearray(blob_transaction())
    forged[-5] ^= 0x01  # inside the last KZG proof
    answer = await send(RpcService(compat_db, tx_sink=sink), bytes(forged))  # type: ignore[arg-type]
    assert answer["error"]["code"] == -32000 and "blob" in answer["error"]["message"]
    assert sink.submitted == []
