"""The manifest: its checksum covers every field, and old readers refuse new formats."""

from __future__ import annotations

import json

import pytest

from snapshot.manifest import CorruptSnapshot, FileEntry, Head, Manifest, UnsupportedSnapshot, format_age, parse_manifest
from snapshot.progress import Progress


def manifest() -> Manifest:
    return Manifest(
        cluster="c1", source="replica", source_id="r1", next_offset=10, sequence=99, last_message_mac="ab" * 32,
        head=Head(5, "0x" + "11" * 32, 1_700_000_000), created_at="2026-01-01T00:00:00.000+00:00", keys=3,
        state_sha256="00" * 32, files=(FileEntry("chaindb/CURRENT", 16, "cd" * 32),),
    ).sealed()


def test_manifest_round_trips_and_its_checksum_covers_every_field() -> None:
    sealed = manifest()
    assert sealed.checksum.startswith("sha256:")
    assert parse_manifest(sealed.to_json(), "m") == sealed
    body = json.loads(sealed.to_json())
    for field, value in [("sequence", 100), ("cluster", "c2"), ("files", []), ("head", None)]:
        changed = dict(body, **{field: value})
        with pytest.raises(CorruptSnapshot, match="checksum mismatch"):
            parse_manifest(json.dumps(changed).encode(), "m")


def test_a_newer_format_version_is_refused_by_name() -> None:
    body = json.loads(manifest().to_json())
    body["format_version"] = 2
    with pytest.raises(UnsupportedSnapshot, match="format version 2 is not supported"):
        parse_manifest(json.dumps(body).encode(), "m")


def test_ages_read_at_a_glance() -> None:
    assert [format_age(s) for s in (5, 250, 2 * 3600 + 300, 3 * 86400 + 4 * 3600)] == ["5s", "4m 10s", "2h 5m", "3d 4h"]


def test_progress_line_shows_a_bar_and_an_eta_when_the_total_is_known() -> None:
    bar = Progress("restore", total=1000, unit="B", quiet=True)
    bar.update(250)
    line = bar.line()
    assert "[######------------------]  25.0%" in line and "250 B / 1000 B" in line and "eta" in line


def test_a_deeply_nested_manifest_is_corrupt_not_a_crash() -> None:
    with pytest.raises(CorruptSnapshot, match="not valid JSON"):
        parse_manifest(b"[" * 70_000, "m")
