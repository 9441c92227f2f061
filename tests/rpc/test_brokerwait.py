"""Calls that wait on the broker have a bound of their own and hold no request slot meanwhile: reads keep them all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from eth.db.atomic import AtomicDB

from filters.methods import FilterLimits, Filters
from filters.store import FilterStore
from rpc.backend import NoPending
from rpc.brokerwait import BrokerWait
from rpc.errors import Overloaded
from rpc.limits import RpcLimits
from rpc.service import RpcService
from rpc.shedding import Admission
from tests.rpc.conftest import caller, serve


def busy(places: int) -> str:
    return (f"server busy ({places} calls already waiting on the broker for filters, sent transactions or pending nonces), "
            "retry shortly")


def unacknowledged_store() -> FilterStore:
    """A filter store whose broker takes every record and never acknowledges one."""
    store = FilterStore()
    store.loaded = True

    async def publish(filter_id: str, value: Any) -> None:
        await asyncio.Event().wait()

    store.publisher = publish
    return store


def stuck_service(db: AtomicDB, ack_timeout: float = 60.0) -> RpcService:
    """Four requests served at once, and four calls waiting on a broker that acknowledges nothing."""
    filters = Filters(unacknowledged_store(), FilterLimits(ack_timeout=ack_timeout))
    return RpcService(db, limits=RpcLimits(max_in_flight=4, max_broker_waiting=4), extra_methods=[filters.methods()])


@pytest.fixture
async def stuck_url(compat_db: AtomicDB) -> AsyncIterator[tuple[RpcService, str]]:
    service = stuck_service(compat_db, ack_timeout=1.0)  # the stuck calls give up before the server stops
    runner, url = await serve(service)
    try:
        yield service, url
    finally:
        await runner.cleanup()


async def post(session: aiohttp.ClientSession, url: str, method: str, *params: Any) -> tuple[int, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with session.post(url, json=body) as response:
        return response.status, await response.json()


async def until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in 5 s")


async def test_reads_are_answered_while_the_broker_acknowledges_no_filter(stuck_url: tuple[RpcService, str]) -> None:
    service, url = stuck_url
    async with aiohttp.ClientSession() as session:
        installs = [asyncio.ensure_future(post(session, url, "eth_newFilter", {})) for _ in range(12)]
        await until(lambda: sum(task.done() for task in installs) == 8)
        refused = [task.result() for task in installs if task.done()]
        async with aiohttp.ClientSession() as readers:  # the refused calls' connections now pause (Retry-After)
            reads = await asyncio.gather(*(post(readers, url, "eth_blockNumber") for _ in range(8)))
        waiting, in_flight = service.broker_wait.waiting, service.admission.in_flight
        await asyncio.gather(*installs)
    assert {(status, body["error"]["code"], body["error"]["message"]) for status, body in refused} == {(503, -32005, busy(4))}
    assert [(status, body["result"]) for status, body in reads] == [(200, "0x2d")] * 8
    assert (waiting, in_flight, service.broker_wait.refused, service.admission.shed) == (4, 0, 8, 0)


async def test_a_lone_call_refused_by_the_brokers_bound_is_answered_as_a_shed_request(
        stuck_url: tuple[RpcService, str]) -> None:
    service, url = stuck_url
    async with aiohttp.ClientSession() as session:
        installs = [asyncio.ensure_future(post(session, url, "eth_newFilter", {})) for _ in range(4)]
        await until(lambda: service.broker_wait.waiting == 4)
        call = {"jsonrpc": "2.0", "id": 7, "method": "eth_newFilter", "params": [{}]}
        async with session.post(url, json=[call, {**call, "id": 8, "method": "eth_blockNumber", "params": []}]) as response:
            batch = response.status, await response.json()
        async with session.post(url, json=call) as response:
            lone = response.status, response.headers.get("Retry-After"), await response.json()
        await asyncio.gather(*installs)
    assert lone == (503, "1", {"jsonrpc": "2.0", "id": 7, "error": {"code": -32005, "message": busy(4)}})
    assert batch == (200, [{"jsonrpc": "2.0", "id": 7, "error": {"code": -32005, "message": busy(4)}},
                           {"jsonrpc": "2.0", "id": 8, "result": "0x2d"}])


async def test_sent_transactions_wait_in_the_same_bound_as_filters(compat_db: AtomicDB) -> None:
    service = stuck_service(compat_db)
    call = caller(service)
    installs = [asyncio.ensure_future(call("eth_newFilter", {})) for _ in range(4)]
    await until(lambda: service.broker_wait.waiting == 4)
    sent = await call("eth_sendRawTransaction", "0x02")
    for task in installs:
        task.cancel()
    assert sent["error"] == {"code": -32005, "message": busy(4)}


async def test_a_record_the_broker_does_not_acknowledge_in_time_answers_a_retryable_error(compat_db: AtomicDB) -> None:
    service = stuck_service(compat_db, ack_timeout=0.05)
    answer = await caller(service)("eth_newFilter", {})
    unacknowledged = "the broker did not acknowledge the filter's record within 0.05s; retry shortly"
    assert answer["error"] == {"code": -32000, "message": unacknowledged}
    assert service.broker_wait.waiting == 0


class UnreadTransactionTopic(NoPending):
    """A pending view that never catches up with the transaction topic."""

    async def sync(self) -> None:
        await asyncio.Event().wait()


async def test_a_pending_nonce_waits_for_the_transaction_topic_in_the_brokers_bound(compat_db: AtomicDB) -> None:
    service = RpcService(compat_db, limits=RpcLimits(max_in_flight=1, max_broker_waiting=1), pending=UnreadTransactionTopic())
    call = caller(service)
    waiting = asyncio.ensure_future(call("eth_getTransactionCount", "0x" + "11" * 20, "pending"))
    await until(lambda: service.broker_wait.waiting == 1)
    refused = await call("eth_getTransactionCount", "0x" + "11" * 20, "pending")
    latest = await call("eth_getTransactionCount", "0x" + "11" * 20, "latest")
    waiting.cancel()
    assert refused["error"]["message"] == busy(1)
    assert latest["result"] == "0x0"


def test_a_call_waiting_on_the_broker_gives_its_request_place_back_meanwhile() -> None:
    admission = Admission(max_in_flight=1)
    wait = BrokerWait(max_waiting=1, admission=admission)
    with admission.held():
        with wait.held():
            assert admission.refusal() is None  # a read arriving now is served
        assert admission.in_flight == 1
    assert admission.in_flight == 0


def test_a_call_that_holds_no_request_place_gives_none_back() -> None:
    admission = Admission(max_in_flight=1)
    with BrokerWait(max_waiting=1, admission=admission).held():  # a WebSocket call
        assert admission.in_flight == 0


def test_a_place_is_given_back_when_its_call_fails() -> None:
    wait = BrokerWait(max_waiting=1)
    with pytest.raises(RuntimeError), wait.held():
        raise RuntimeError("the call failed")
    with wait.held():
        assert wait.waiting == 1
    assert (wait.waiting, wait.refused) == (0, 0)


def test_calls_that_wait_long_after_the_broker_share_a_quarter_of_the_places() -> None:
    wait = BrokerWait(8)
    with wait.held(long=True), wait.held(long=True):
        with pytest.raises(Overloaded) as refused:
            with wait.held(long=True):
                pass
        with wait.held(), wait.held():  # filters and sends keep the other places
            assert wait.waiting == 4
    assert refused.value.to_json()["message"] == "server busy (2 sent transactions already waiting for their receipts), retry shortly"
    assert (wait.waiting, wait.long_waiting, wait.refused) == (0, 0, 1)
