"""Admission: at most max_in_flight requests, and none while the apply agent falls behind."""

from __future__ import annotations

from rpc.shedding import Admission


def test_requests_past_the_in_flight_bound_are_refused_and_counted() -> None:
    admission = Admission(max_in_flight=1)
    with admission.held():
        refused = admission.refusal()
        assert refused is not None and refused.code == -32005
        assert refused.message == "server busy (1 requests in flight), retry shortly"
    assert admission.refusal() is None and admission.shed == 1


def test_every_request_is_refused_while_the_apply_agent_is_behind() -> None:
    lag = [80]
    admission = Admission(max_in_flight=64, behind=lambda: f"{lag[0]} messages behind" if lag[0] > 25 else None)
    refused = admission.refusal()
    assert refused is not None and refused.message == "server busy (80 messages behind), retry shortly"
    lag[0] = 3
    assert admission.refusal() is None
