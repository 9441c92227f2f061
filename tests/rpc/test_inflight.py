"""A transaction's first send runs to its end for the copies that joined it, whoever started it."""

from __future__ import annotations

import asyncio

from rpc.inflight import InFlight


async def test_a_send_whose_caller_went_away_still_answers_the_copies_that_joined_it() -> None:
    in_flight, sent = InFlight(), asyncio.Event()
    broker_answers = asyncio.Event()

    async def send() -> None:
        sent.set()
        await broker_answers.wait()

    caller = asyncio.ensure_future(in_flight.send_once(b"tx", send))
    await sent.wait()
    resend = asyncio.ensure_future(in_flight.join(b"tx"))
    caller.cancel()  # its client hung up
    await asyncio.sleep(0)
    broker_answers.set()

    assert await resend is None
    assert b"tx" not in in_flight
