"""The snapshot format: its manifest, its checksum, its errors.

A snapshot is ``manifest.json`` beside ``chaindb/`` (a LevelDB), either as a
directory or as a gzip-compressed tar archive whose first member is the
manifest. The manifest lists every file of ``chaindb/`` with its size and
SHA-256, and ``checksum`` is the SHA-256 of the manifest's canonical JSON
without that field: one value that covers the manifest and, through the file
hashes, every byte of the database.

``state_sha256`` hashes the chain's key/value pairs outside the bookkeeping
keys, in key order: two snapshots (or a master and a replica) at the same
sequence number have the same value.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from cluster import boundedjson

FORMAT_VERSION = 1
KIND = "ethercattle-snapshot"
MANIFEST_NAME = "manifest.json"
DB_DIR = "chaindb"
FORMATS = ("dir", "tar.gz")
TAR_SUFFIX = ".tar.gz"


class SnapshotError(Exception):
    """A snapshot cannot be made, read or restored; the message says why and what to do."""


class CorruptSnapshot(SnapshotError):
    """A checksum does not verify, or the snapshot is not laid out as the format says."""


class UnsupportedSnapshot(SnapshotError):
    """The snapshot's format version is not one this code reads."""


class WrongCluster(SnapshotError):
    """The snapshot (or database) belongs to another cluster."""

    def __init__(self, message: str, expected: str, found: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


class SnapshotTooOld(SnapshotError):
    """The snapshot's offset has left Kafka's retention: the log no longer continues it."""

    def __init__(self, message: str, offset: int, earliest: int, age_seconds: float) -> None:
        super().__init__(message)
        self.offset = offset
        self.earliest = earliest
        self.age_seconds = age_seconds


class LogMismatch(SnapshotError):
    """The log does not continue the snapshot (reset, recreated, another cluster's)."""


class DatadirNotEmpty(SnapshotError):
    """Restore never overwrites: the target datadir already holds something."""


class DatabaseInUse(SnapshotError):
    """Another process (a running replica or master) holds the database's lock."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_age(seconds: float) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``, ``12s``: an age a person reads at a glance."""
    seconds = max(int(seconds), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


@dataclass(frozen=True)
class FileEntry:
    """One file of ``chaindb/``: its path inside the snapshot, size and SHA-256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Head:
    """The canonical head block of the snapshot's chain."""

    number: int
    hash: str
    timestamp: int


@dataclass(frozen=True)
class Manifest:
    """What a snapshot holds and where it stands in the log."""

    cluster: str
    source: str
    """``replica`` or ``master``: what kind of database the snapshot was taken from."""
    source_id: str
    """The replica id or master id that was snapshotted."""
    next_offset: int
    """The Kafka offset of the CDC log where a replica restored from it resumes."""
    sequence: int
    """The last record (master sequence number) the snapshot holds."""
    last_message_mac: str
    """Hex authenticator of the message at ``next_offset - 1`` (empty at offset 0)."""
    head: Head | None
    created_at: str
    """ISO 8601 UTC time the point-in-time view was taken."""
    keys: int
    """Key/value pairs in the database, bookkeeping included."""
    state_sha256: str
    files: tuple[FileEntry, ...]
    format_version: int = FORMAT_VERSION
    kind: str = KIND
    checksum: str = field(default="", compare=False)

    @property
    def created(self) -> float:
        """``created_at`` as a unix time."""
        return datetime.fromisoformat(self.created_at).timestamp()

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.created

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files)

    def fields(self) -> dict[str, Any]:
        """Every field but ``checksum``, as plain JSON values."""
        body = asdict(self)
        body.pop("checksum")
        body["files"] = [asdict(entry) for entry in self.files]
        return body

    def sealed(self) -> "Manifest":
        """This manifest with its checksum filled in."""
        return replace(self, checksum=compute_checksum(self.fields()))

    def to_json(self) -> bytes:
        body = self.fields()
        body["checksum"] = self.checksum or compute_checksum(body)
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()

    def summary(self) -> str:
        head = f"head {self.head.number} {self.head.hash}" if self.head else "no head block"
        return (
            f"cluster {self.cluster}, {self.source} {self.source_id}, next offset {self.next_offset}, "
            f"sequence {self.sequence}, {head}, {self.keys} keys, {self.size} bytes, taken {self.created_at}"
        )


def compute_checksum(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a manifest's fields (``checksum`` excluded)."""
    body = {key: value for key, value in fields.items() if key != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    return "sha256:" + sha256_hex(canonical)


def parse_manifest(raw: bytes, where: str) -> Manifest:
    """A manifest read from bytes, its checksum verified; ``CorruptSnapshot`` otherwise."""
    try:
        body = boundedjson.loads(raw)
    except ValueError as exc:
        raise CorruptSnapshot(f"{where}: the manifest is not valid JSON ({exc}): the snapshot is damaged") from None
    if not isinstance(body, dict) or body.get("kind") != KIND:
        raise CorruptSnapshot(f"{where}: not an ethercattle snapshot manifest")
    version = body.get("format_version")
    if version != FORMAT_VERSION:
        raise UnsupportedSnapshot(
            f"{where}: snapshot format version {version} is not supported (this ethercattle reads {FORMAT_VERSION})"
        )
    stated = body.get("checksum", "")
    actual = compute_checksum(body)
    if stated != actual:
        raise CorruptSnapshot(f"{where}: manifest checksum mismatch (states {stated}, content hashes to {actual}): the snapshot is damaged")
    try:
        head = body["head"]
        return Manifest(
            cluster=body["cluster"],
            source=body["source"],
            source_id=body["source_id"],
            next_offset=int(body["next_offset"]),
            sequence=int(body["sequence"]),
            last_message_mac=body["last_message_mac"],
            head=None if head is None else Head(int(head["number"]), head["hash"], int(head["timestamp"])),
            created_at=body["created_at"],
            keys=int(body["keys"]),
            state_sha256=body["state_sha256"],
            files=tuple(FileEntry(f["path"], int(f["size"]), f["sha256"]) for f in body["files"]),
            format_version=version,
            checksum=stated,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptSnapshot(f"{where}: the manifest lacks or mangles a field ({exc!r})") from None


def utc_now_iso(now: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds")
