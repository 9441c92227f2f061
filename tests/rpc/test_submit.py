"""eth_sendRawTransaction: a blob transaction's sidecar must verify before it reaches the topic, and
after Osaka it reaches the topic with cell proofs (version 1) whatever version the client sent."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator

import ckzg
import pytest
from eth.abc import SignedTransactionAPI
from eth.db.atomic import AtomicDB
from eth_account import Account
from eth_utils import keccak

from chain.config import open_chain
from chain.dev import dev_accounts, init_dev_chain
from chain.kzg import KzgWorker, cell_proofs, trusted_setup
from chain.transactions import (CELLS_PER_EXT_BLOB, BlobSidecar, encode_network_form, kzg_to_versioned_hash,
                                split_network_form, verify_sidecar, with_cell_proofs)
from pending.chainview import ChainView
from pending.pool import PendingPool
from pending.sink import TopicSink
from rpc.backend import NoPending
from rpc.service import RpcService
from tests.chain.test_osaka_transactions import random_blob
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


@pytest.fixture(scope="module")
def osaka_chain_service() -> Iterator[RpcService]:
    """A dev chain on Osaka rules at its genesis; its KZG worker (one child process) stopped after."""
    db = AtomicDB()
    init_dev_chain(db, fork="osaka")
    service = RpcService(db, tx_sink=RecordingSink())
    yield service
    service.backend.kzg.close()


@pytest.fixture
def osaka_service(osaka_chain_service: RpcService) -> RpcService:
    """The Osaka service with nothing submitted yet."""
    submitted(osaka_chain_service).clear()
    return osaka_chain_service


def osaka_blob_transaction() -> bytes:
    """A dev account's blob transaction as a client before EIP-7594 signs it: one KZG proof per blob."""
    (_, key), (to, _) = dev_accounts()[:2]
    blobs = (random_blob(1), random_blob(2))
    commitments = tuple(ckzg.blob_to_kzg_commitment(blob, trusted_setup()) for blob in blobs)
    proofs = tuple(ckzg.compute_blob_kzg_proof(blob, commitment, trusted_setup())
                   for blob, commitment in zip(blobs, commitments))
    transaction = {"type": 3, "chainId": 1337, "nonce": 0, "to": to, "value": 0, "gas": 21_000,
                   "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, "maxFeePerBlobGas": 10**10,
                   "blobVersionedHashes": [kzg_to_versioned_hash(commitment) for commitment in commitments]}
    canonical = bytes(Account.sign_transaction(transaction, key).raw_transaction)
    return encode_network_form(canonical, BlobSidecar(blobs, commitments, proofs))


def cell_proof_form(raw: bytes) -> bytes:
    """The same transaction with its sidecar's cell proofs (version 1)."""
    canonical, sidecar = split_network_form(raw)
    assert sidecar is not None
    return encode_network_form(canonical, with_cell_proofs(sidecar, cell_proofs(sidecar.blobs)))


def forged_cell_proof_form(raw: bytes) -> bytes:
    """The same transaction with cell proofs swapped between its blobs: every proof is a real one,
    of the other blob, so only verifying them finds the forgery."""
    canonical, sidecar = split_network_form(raw)
    assert sidecar is not None
    proofs = cell_proofs(sidecar.blobs)
    return encode_network_form(canonical, with_cell_proofs(sidecar, (*proofs[CELLS_PER_EXT_BLOB:], *proofs[:CELLS_PER_EXT_BLOB])))


def submitted(service: RpcService) -> list[tuple[bytes, bytes, bytes]]:
    return service.backend.tx_sink.submitted  # type: ignore[union-attr, no-any-return]


def occupy(worker: KzgWorker) -> list[asyncio.Future[tuple[bytes, ...]]]:
    """Fill ``worker``: a check or conversion asked of it now is refused as busy."""
    return [asyncio.ensure_future(worker.run(cell_proofs, (random_blob(seed),))) for seed in range(worker.max_waiting)]


async def until(condition: Callable[[], object], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_version_0_sidecar_after_osaka_reaches_the_sink_with_cell_proofs_and_the_same_hash(
        osaka_service: RpcService) -> None:
    sent = osaka_blob_transaction()
    canonical, _ = split_network_form(sent)

    answer = await send(osaka_service, sent)

    [(raw, tx_hash, _)] = submitted(osaka_service)
    forwarded_canonical, sidecar = split_network_form(raw)
    assert sidecar is not None and sidecar.version == 1
    assert forwarded_canonical == canonical
    assert answer["result"] == "0x" + tx_hash.hex() == "0x" + keccak(canonical).hex()
    verify_sidecar(open_chain(osaka_service.backend.db).get_vm().get_transaction_builder().decode(canonical), sidecar)


async def test_version_0_sidecar_with_a_bad_proof_after_osaka_is_refused_and_not_submitted(
        osaka_service: RpcService) -> None:
    canonical, sidecar = split_network_form(osaka_blob_transaction())
    assert sidecar is not None
    swapped = BlobSidecar(sidecar.blobs, sidecar.commitments, sidecar.proofs[::-1])  # each blob, the other's proof

    answer = await send(osaka_service, encode_network_form(canonical, swapped))

    assert answer["error"] == {"code": -32000, "message": "blob KZG proofs do not verify"}
    assert submitted(osaka_service) == []


async def test_version_0_sidecar_before_osaka_reaches_the_sink_unchanged(compat_db: object) -> None:
    sink = RecordingSink()
    sent = blob_transaction()

    await send(RpcService(compat_db, tx_sink=sink), sent)  # type: ignore[arg-type]

    assert [raw for raw, _, _ in sink.submitted] == [sent]


async def test_version_1_sidecar_before_osaka_is_refused_and_not_submitted(compat_db: object) -> None:
    sink = RecordingSink()
    service = RpcService(compat_db, tx_sink=sink)  # type: ignore[arg-type]

    answer = await send(service, cell_proof_form(blob_transaction()))

    assert answer["error"]["code"] == -32000 and "not valid before Osaka" in answer["error"]["message"]
    assert sink.submitted == []


async def test_version_1_sidecar_after_osaka_reaches_the_sink_unchanged(osaka_service: RpcService) -> None:
    sent = cell_proof_form(osaka_blob_transaction())

    answer = await send(osaka_service, sent)

    assert answer["result"] == "0x" + keccak(split_network_form(sent)[0]).hex()
    assert [raw for raw, _, _ in submitted(osaka_service)] == [sent]


async def test_version_1_sidecar_whose_cell_proofs_do_not_verify_is_refused_after_osaka(
        osaka_service: RpcService) -> None:
    answer = await send(osaka_service, forged_cell_proof_form(osaka_blob_transaction()))

    assert answer["error"] == {"code": -32000, "message": "blob KZG proofs do not verify"}
    assert submitted(osaka_service) == []


@pytest.mark.parametrize("version", [0, 1])  # converted in the worker, verified in the worker
async def test_blob_sidecar_sent_while_the_kzg_worker_is_full_is_refused_as_busy(
        osaka_service: RpcService, version: int) -> None:
    worker = osaka_service.backend.kzg
    sent = osaka_blob_transaction() if version == 0 else cell_proof_form(osaka_blob_transaction())
    occupying = occupy(worker)
    await asyncio.sleep(0)

    answer = await send(osaka_service, sent)

    assert answer["error"] == {"code": -32005, "message": "server busy (4 blob sidecars already being checked or "
                                                          "converted), retry shortly"}
    assert submitted(osaka_service) == []
    await asyncio.gather(*occupying)


class PendingHolding(NoPending):
    """A pending view holding one transaction (by hash)."""

    def __init__(self, tx_hash: bytes) -> None:
        self.tx_hash = tx_hash

    def get(self, tx_hash: bytes) -> tuple[SignedTransactionAPI, bytes] | None:
        return (None, b"") if tx_hash == self.tx_hash else None  # type: ignore[return-value]


async def test_a_blob_transaction_already_pending_is_answered_without_converting_its_sidecar_again(
        osaka_service: RpcService) -> None:
    sent = osaka_blob_transaction()
    canonical, _ = split_network_form(sent)
    occupying = occupy(osaka_service.backend.kzg)  # a conversion now would be refused as busy
    await asyncio.sleep(0)
    osaka_service.backend.pending = PendingHolding(keccak(canonical))
    try:
        answer = await send(osaka_service, sent)
    finally:
        osaka_service.backend.pending = NoPending()
        await asyncio.gather(*occupying)
    assert answer == {"jsonrpc": "2.0", "id": 1, "result": "0x" + keccak(canonical).hex()}
    assert submitted(osaka_service) == []


class HeldTopic:
    """The transaction topic under a ``TopicSink``, its broker acknowledging only when told to."""

    def __init__(self) -> None:
        self.produced: list[bytes] = []
        self._answered = asyncio.Event()
        self._failure: Exception | None = None

    async def produce(self, key: bytes, value: bytes) -> None:
        self.produced.append(value)
        await self._answered.wait()
        if self._failure is not None:
            raise self._failure

    def answer(self, failure: Exception | None = None) -> None:
        self._failure = failure
        self._answered.set()


@pytest.fixture
def held_topic(osaka_service: RpcService) -> Iterator[HeldTopic]:
    """The Osaka service's sink is a ``TopicSink`` (with its pending view) writing to a ``HeldTopic``."""
    topic, recording = HeldTopic(), osaka_service.backend.tx_sink
    osaka_service.backend.tx_sink = TopicSink(topic.produce, PendingPool(900), ChainView(osaka_service.backend.db).decode)
    yield topic
    osaka_service.backend.tx_sink = recording


@pytest.mark.parametrize("acknowledged", [True, False])
async def test_a_resend_while_the_first_copy_waits_for_the_broker_is_answered_like_it_without_converting_again(
        osaka_service: RpcService, held_topic: HeldTopic, acknowledged: bool) -> None:
    sent = osaka_blob_transaction()
    first = asyncio.ensure_future(send(osaka_service, sent))
    await until(lambda: held_topic.produced)  # converted, its record on the way to the topic
    occupying = occupy(osaka_service.backend.kzg)

    resend = asyncio.ensure_future(send(osaka_service, sent))
    await asyncio.sleep(0.05)
    held_topic.answer(None if acknowledged else ConnectionError("broker gone"))

    answers = await asyncio.gather(first, resend)
    await asyncio.gather(*occupying)
    expected = ({"result": "0x" + keccak(split_network_form(sent)[0]).hex()} if acknowledged else
                {"error": {"code": -32000, "message": "transaction not accepted: the cluster's transaction log is "
                                                      "unavailable (broker gone); retry shortly"}})
    assert answers == [{"jsonrpc": "2.0", "id": 1, **expected}] * 2
    assert len(held_topic.produced) == 1


async def test_two_copies_verified_at_once_produce_one_record(osaka_service: RpcService, held_topic: HeldTopic) -> None:
    sent = cell_proof_form(osaka_blob_transaction())  # both copies' cell proofs verified in the worker, one by one
    copies = [asyncio.ensure_future(send(osaka_service, sent)) for _ in range(2)]
    await until(lambda: held_topic.produced)
    await asyncio.sleep(0.2)
    held_topic.answer()

    answers = await asyncio.gather(*copies)

    assert answers == [{"jsonrpc": "2.0", "id": 1, "result": "0x" + keccak(split_network_form(sent)[0]).hex()}] * 2
    assert len(held_topic.produced) == 1


async def test_a_resend_while_the_first_copy_is_converted_joins_it(osaka_service: RpcService) -> None:
    sent = osaka_blob_transaction()

    answers = await asyncio.gather(send(osaka_service, sent), send(osaka_service, sent))

    assert answers == [{"jsonrpc": "2.0", "id": 1, "result": "0x" + keccak(split_network_form(sent)[0]).hex()}] * 2
    assert len(submitted(osaka_service)) == 1


async def test_a_forged_copy_sent_first_does_not_answer_for_the_valid_one(osaka_service: RpcService) -> None:
    sent = osaka_blob_transaction()
    canonical, _ = split_network_form(sent)

    answers = await asyncio.gather(send(osaka_service, forged_cell_proof_form(sent)), send(osaka_service, sent))

    assert [answer.get("error", answer.get("result")) for answer in answers] == [
        {"code": -32000, "message": "blob KZG proofs do not verify"}, "0x" + keccak(canonical).hex()]
    assert len(submitted(osaka_service)) == 1


async def test_blob_transaction_over_osakas_blob_limit_is_refused_and_not_converted(osaka_service: RpcService) -> None:
    (_, key), (to, _) = dev_accounts()[:2]
    blob, commitment, proof = bytes(131_072), b"\xc0" + bytes(47), b"\xc0" + bytes(47)  # all zero: points at infinity
    transaction = {"type": 3, "chainId": 1337, "nonce": 0, "to": to, "value": 0, "gas": 21_000,
                   "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, "maxFeePerBlobGas": 10**9,
                   "blobVersionedHashes": [kzg_to_versioned_hash(commitment)] * 7}
    canonical = bytes(Account.sign_transaction(transaction, key).raw_transaction)

    answer = await send(osaka_service, encode_network_form(canonical, BlobSidecar((blob,) * 7, (commitment,) * 7,
                                                                                   (proof,) * 7)))

    assert answer["error"] == {"code": -32000, "message": "blob transaction has 7 blobs, more than 6"}
    assert submitted(osaka_service) == []


async def test_transaction_over_osakas_gas_cap_is_refused(osaka_service: RpcService) -> None:
    (_, key), (to, _) = dev_accounts()[:2]
    transaction = {"type": 2, "chainId": 1337, "nonce": 0, "to": to, "value": 0, "gas": 2**24 + 1,
                   "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}

    answer = await send(osaka_service, bytes(Account.sign_transaction(transaction, key).raw_transaction))

    assert answer["error"] == {"code": -32000,
                               "message": "transaction gas limit too high (cap: 16777216, tx: 16777217)"}
    assert submitted(osaka_service) == []
