"""Signed requests to a running replica's snapshot endpoint."""

from __future__ import annotations

import time

from snapshot.remote import sign, verify

SECRET, CLUSTER = "remote-test-secret-0123", "c1"


def test_a_signed_request_verifies_and_any_change_breaks_it() -> None:
    now = time.time()
    header = sign(SECRET, CLUSTER, "POST", "/snapshot", b'{"out": "a"}', now)
    assert verify(SECRET, CLUSTER, header, "POST", "/snapshot", b'{"out": "a"}', now + 1)
    assert not verify(SECRET, CLUSTER, header, "POST", "/snapshot", b'{"out": "b"}', now)
    assert not verify(SECRET, CLUSTER, header, "GET", "/snapshot", b'{"out": "a"}', now)
    assert not verify("another-secret-000000", CLUSTER, header, "POST", "/snapshot", b'{"out": "a"}', now)
    assert not verify(SECRET, "c2", header, "POST", "/snapshot", b'{"out": "a"}', now)
    assert not verify(SECRET, CLUSTER, None, "POST", "/snapshot", b"", now)
    assert not verify(SECRET, CLUSTER, "garbage", "POST", "/snapshot", b"", now)


def test_a_stale_signature_is_refused() -> None:
    then = time.time() - 3600
    header = sign(SECRET, CLUSTER, "GET", "/snapshot", b"", then)
    assert not verify(SECRET, CLUSTER, header, "GET", "/snapshot", b"")
