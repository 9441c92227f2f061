"""The apply logic: exactly once, in order, atomically with its position, halting on bad input."""

from pathlib import Path

import pytest

from cluster.record import Authenticator, Heartbeat, Rebase, Record, encode_heartbeat, encode_parts, encode_rebase, encode_record, encode_records
from replica.applier import Applier, ApplyHalted
from replica.position import Position, read_position
from storage.leveldb import LevelDB

AUTH = Authenticator.for_cluster("a-cluster-secret-0123", "main")


def records_message(*records: Record) -> bytes:
    return encode_records(AUTH, "m", map(encode_record, records))


def put(sequence: int, key: bytes = b"", value: bytes = b"v") -> Record:
    return Record(sequence, ((key or b"k%d" % sequence, value),))


@pytest.fixture
def db(tmp_path: Path) -> LevelDB:
    with LevelDB(tmp_path / "chaindb") as leveldb:
        yield leveldb


def test_applies_records_and_stores_position_with_them(db: LevelDB) -> None:
    applier = Applier(db, AUTH)
    applier.apply([(0, records_message(put(1), put(2))), (1, records_message(put(3)))])
    assert [db[b"k%d" % i] for i in (1, 2, 3)] == [b"v"] * 3
    position = read_position(db)
    assert (position.sequence, position.next_offset) == (3, 2)


def test_deletes_are_applied(db: LevelDB) -> None:
    applier = Applier(db, AUTH)
    applier.apply([(0, records_message(put(1, b"a"), Record(2, ((b"a", None),))))])
    assert b"a" not in db


def test_duplicate_records_are_skipped_not_reapplied(db: LevelDB) -> None:
    applier = Applier(db, AUTH)
    applier.apply([(0, records_message(put(1, b"a", b"first")))])
    outcome = applier.apply([(1, records_message(put(1, b"a", b"replayed"), put(2)))])
    assert db[b"a"] == b"first"
    assert (outcome.duplicates, outcome.records) == (1, 1)


def test_already_applied_offsets_are_ignored(db: LevelDB) -> None:
    applier = Applier(db, AUTH)
    applier.apply([(0, records_message(put(1)))])
    outcome = applier.apply([(0, records_message(put(1))), (1, records_message(put(2)))])
    assert (outcome.records, outcome.duplicates) == (1, 0)


def test_sequence_gap_halts_after_applying_what_came_before(db: LevelDB) -> None:
    applier = Applier(db, AUTH)
    with pytest.raises(ApplyHalted) as halted:
        applier.apply([(0, records_message(put(1))), (1, records_message(put(3)))])
    assert (halted.value.reason, halted.value.offset) == ("gap", 1)
    assert "expected record 2, got record 3" in str(halted.value)
    assert read_position(db).sequence == 1 and b"k3" not in db


def test_heartbeat_claiming_unseen_records_is_a_gap(db: LevelDB) -> None:
    applier = Applier(db, AUTH)
    beat = encode_heartbeat(AUTH, "m", Heartbeat(5, 1.0, 0, 0, b"\0" * 32))
    with pytest.raises(ApplyHalted) as halted:
        applier.apply([(0, records_message(put(1))), (1, beat)])
    assert halted.value.reason == "gap"


def test_heartbeat_advances_offset_and_is_reported(db: LevelDB) -> None:
    applier = Applier(db, AUTH)
    beat = Heartbeat(1, 2.0, 3, 4, b"\1" * 32)
    outcome = applier.apply([(0, records_message(put(1))), (1, encode_heartbeat(AUTH, "m", beat))])
    assert outcome.heartbeat == beat and read_position(db).next_offset == 2


def test_forged_message_is_skipped_and_applying_continues(db: LevelDB) -> None:
    forger = Authenticator.for_cluster("not-the-cluster-secret", "main")
    outcome = Applier(db, AUTH).apply([
        (0, records_message(put(1))), (1, encode_records(forger, "m", [encode_record(put(2, b"evil"))])), (2, records_message(put(2))),
    ])
    assert b"evil" not in db and db[b"k2"] == b"v"
    assert [(stray.offset, stray.reason) for stray in outcome.strays] == [(1, "forged")]
    assert (read_position(db).sequence, read_position(db).next_offset) == (2, 3)


def test_message_of_another_cluster_is_skipped(db: LevelDB) -> None:
    other = Authenticator.for_cluster("a-cluster-secret-0123", "other")
    outcome = Applier(db, AUTH).apply([(0, encode_records(other, "m", [encode_record(put(1))])), (1, records_message(put(1)))])
    assert [stray.reason for stray in outcome.strays] == ["foreign-cluster"] and db[b"k1"] == b"v"


def test_random_bytes_are_skipped_and_the_position_moves_past_them(db: LevelDB) -> None:
    junk = bytes(range(200))
    outcome = Applier(db, AUTH).apply([(0, records_message(put(1))), (1, junk)])
    assert [stray.reason for stray in outcome.strays] == ["not-an-envelope"]
    position = read_position(db)
    assert (position.sequence, position.next_offset, position.last_message_mac) == (1, 2, junk[-32:])


def test_a_skipped_stray_is_logged_with_its_offset_and_reason(db: LevelDB, caplog: pytest.LogCaptureFixture) -> None:
    Applier(db, AUTH).apply([(7, b"\x00" * 80)])
    assert "skipped the message at offset 7: not-an-envelope" in caplog.text


def test_a_flood_of_strays_logs_one_line_per_window(db: LevelDB, caplog: pytest.LogCaptureFixture) -> None:
    outcome = Applier(db, AUTH).apply([(offset, b"\x00" * 80) for offset in range(1000)])
    assert len(outcome.strays) == 1000
    assert sum("skipped the message" in message for message in caplog.messages) == 1


def test_gap_in_the_authenticated_sequence_halts_across_strays(db: LevelDB) -> None:
    with pytest.raises(ApplyHalted) as halted:
        Applier(db, AUTH).apply([(0, records_message(put(1))), (1, b"\x00" * 80), (2, records_message(put(3)))])
    assert (halted.value.reason, halted.value.offset) == ("gap", 2)
    assert read_position(db).next_offset == 2 and b"k3" not in db


def test_authentic_but_undecodable_message_halts(db: LevelDB) -> None:
    unknown_operation = (1).to_bytes(8, "big") + (1).to_bytes(4, "big") + b"\x07"
    with pytest.raises(ApplyHalted) as halted:
        Applier(db, AUTH).apply([(0, encode_records(AUTH, "m", [unknown_operation]))])
    assert halted.value.reason == "corrupt"


def test_record_in_parts_applies_only_when_complete(db: LevelDB) -> None:
    big = Record(1, ((b"big", b"x" * 30_000),))
    parts = encode_parts(AUTH, "m", encode_record(big), 8192)
    applier = Applier(db, AUTH)
    applier.apply([(i, p) for i, p in enumerate(parts[:2])])
    assert b"big" not in db and read_position(db).next_offset == 0
    applier.apply([(i, p) for i, p in enumerate(parts) if i >= 2])
    assert db[b"big"] == b"x" * 30_000 and read_position(db).next_offset == len(parts)


def test_a_restarted_part_sequence_replaces_the_partial_one(db: LevelDB) -> None:
    big = Record(1, ((b"big", b"y" * 20_000),))
    parts = encode_parts(AUTH, "m", encode_record(big), 8192)
    messages = list(enumerate([parts[0], *parts]))
    Applier(db, AUTH).apply(messages)
    assert db[b"big"] == b"y" * 20_000


def test_record_in_parts_interleaved_with_strays_applies_at_once(db: LevelDB) -> None:
    big = Record(1, ((b"big", b"w" * 30_000),))
    parts = encode_parts(AUTH, "m", encode_record(big), 8192)
    interleaved = [message for part in parts for message in (part, b"\x00" * 80)]
    applier = Applier(db, AUTH)
    outcome = applier.apply(list(enumerate(interleaved[:4])))
    assert b"big" not in db and read_position(db).next_offset == 0 and len(outcome.strays) == 2
    applier.apply([(i, m) for i, m in enumerate(interleaved) if i >= 4])
    assert db[b"big"] == b"w" * 30_000 and read_position(db).next_offset == len(interleaved)


def test_out_of_order_part_halts(db: LevelDB) -> None:
    parts = encode_parts(AUTH, "m", encode_record(Record(1, ((b"big", b"z" * 20_000),))), 8192)
    with pytest.raises(ApplyHalted) as halted:
        Applier(db, AUTH).apply([(0, parts[0]), (1, parts[2])])
    assert halted.value.reason == "corrupt"


def test_record_writing_a_bookkeeping_key_halts(db: LevelDB) -> None:
    with pytest.raises(ApplyHalted):
        Applier(db, AUTH).apply([(0, records_message(Record(1, ((b"ethercattle:replica:sequence", b"x"),))))])


def test_a_new_applier_resumes_from_the_stored_position(db: LevelDB) -> None:
    Applier(db, AUTH).apply([(0, records_message(put(1), put(2)))])
    resumed = Applier(db, AUTH)
    assert resumed.position.sequence == 2
    assert resumed.apply([(1, records_message(put(2), put(3)))]).records == 1


def test_a_rebase_after_a_record_this_replica_holds_is_continued(db: LevelDB) -> None:
    applier = Applier(db, AUTH)
    applier.apply([(0, records_message(put(1), put(2)))])
    applier.rebase(Position(2, 0, b""))  # the new log
    applier.apply([(0, encode_rebase(AUTH, "m", Rebase(2, 7, b"\1" * 32))), (1, records_message(put(3)))])
    assert db[b"k3"] == b"v" and (read_position(db).sequence, read_position(db).next_offset) == (3, 2)


def test_a_rebase_after_records_this_replica_never_saw_is_a_gap(db: LevelDB) -> None:
    with pytest.raises(ApplyHalted) as halted:
        Applier(db, AUTH).apply([(0, encode_rebase(AUTH, "m", Rebase(40, 7, b"\1" * 32)))])
    assert halted.value.reason == "gap" and "holds records only up to 0" in halted.value.detail
