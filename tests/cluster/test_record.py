"""The CDC codec: round trips, authentication, cluster separation, and refusal of damage."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster.record import (
    Authenticator,
    CorruptMessage,
    ForeignCluster,
    ForgedMessage,
    NotAnEnvelope,
    Heartbeat,
    Kind,
    Rebase,
    Record,
    Unauthentic,
    decode,
    decode_record,
    encode_heartbeat,
    encode_parts,
    encode_record,
    encode_rebase,
    encode_records,
)

AUTH = Authenticator.for_cluster("a-cluster-secret-0123", "main")
operations = st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.one_of(st.none(), st.binary(max_size=200))), max_size=20)


@given(st.integers(min_value=1, max_value=2**63), operations)
def test_record_round_trips(sequence: int, ops: list) -> None:
    record = Record(sequence, tuple(ops))
    assert decode_record(encode_record(record)) == record


def test_records_envelope_round_trips_in_order() -> None:
    records = [Record(i, ((b"k%d" % i, b"v"), (b"gone", None))) for i in (1, 2, 3)]
    envelope = decode(AUTH, encode_records(AUTH, "m1", map(encode_record, records)))
    assert (envelope.kind, envelope.cluster, envelope.master) == (Kind.RECORDS, "main", "m1")
    assert list(envelope.records) == records


def test_heartbeat_round_trips() -> None:
    beat = Heartbeat(7, 1700000000.5, 12, 1699999999, b"\x11" * 32)
    assert decode(AUTH, encode_heartbeat(AUTH, "m1", beat)).heartbeat == beat


def test_large_record_splits_into_parts_within_the_limit() -> None:
    encoded = encode_record(Record(5, ((b"big", b"x" * 50_000),)))
    parts = encode_parts(AUTH, "m1", encoded, 8192)
    assert len(parts) == 7 and all(len(p) <= 8192 for p in parts)
    decoded = [decode(AUTH, p).part for p in parts]
    assert [p.index for p in decoded] == list(range(7))
    assert decode_record(b"".join(p.chunk for p in decoded)) == Record(5, ((b"big", b"x" * 50_000),))


def test_wrong_secret_is_forged() -> None:
    other = Authenticator.for_cluster("another-secret-456789", "main")
    with pytest.raises(ForgedMessage):
        decode(AUTH, encode_records(other, "m1", [encode_record(Record(1, ()))]))


def test_other_cluster_is_refused_even_with_the_same_secret() -> None:
    other = Authenticator.for_cluster("a-cluster-secret-0123", "other")
    with pytest.raises(ForeignCluster):
        decode(AUTH, encode_records(other, "m1", [encode_record(Record(1, ()))]))


def test_flipped_byte_is_refused() -> None:
    message = bytearray(encode_records(AUTH, "m1", [encode_record(Record(1, ((b"k", b"v"),)))]))
    message[-40] ^= 1
    with pytest.raises(ForgedMessage):
        decode(AUTH, bytes(message))


@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_unauthentic_never_corrupt(junk: bytes) -> None:
    with pytest.raises(Unauthentic):
        decode(AUTH, junk)


def test_bytes_without_the_envelope_magic_are_not_an_envelope() -> None:
    with pytest.raises(NotAnEnvelope):
        decode(AUTH, bytes(200))


def test_an_authentic_envelope_of_another_format_version_is_corrupt() -> None:
    message = encode_records(AUTH, "m1", [encode_record(Record(1, ()))])
    with pytest.raises(CorruptMessage, match="upgrade the replica"):
        decode(AUTH, AUTH.sign(message[:2] + b"\x09" + message[3:-32]))


def test_authentic_but_malformed_payload_is_corrupt() -> None:
    # A correctly signed envelope whose record list claims more records than it holds.
    signed = encode_records(AUTH, "m1", [encode_record(Record(1, ()))])
    body = bytearray(signed[:-32])
    count_at = len(body) - len(encode_record(Record(1, ()))) - 4
    body[count_at : count_at + 4] = (9).to_bytes(4, "big")
    with pytest.raises(CorruptMessage):
        decode(AUTH, AUTH.sign(bytes(body)))


def test_rebase_round_trips() -> None:
    rebase = Rebase(41, 9, b"\x33" * 32)
    assert decode(AUTH, encode_rebase(AUTH, "m1", rebase)).rebase == rebase
