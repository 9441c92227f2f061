"""The two on-disk layouts of a snapshot, read and written with every byte checked.

- ``dir``: ``manifest.json`` and ``chaindb/`` in a directory. Every file is
  covered by its SHA-256 in the manifest, the manifest by its own checksum.
- ``tar.gz``: the same as a tar stream in one gzip member, the manifest first
  (so the cluster and the log position are checked before anything is
  extracted). Files are covered by their hashes, the tar headers by tar's
  header checksums, the whole uncompressed stream by gzip's CRC (read to the
  end, trailing bytes refused), and the gzip header is compared with the one
  this module writes (no file name, no timestamp), so no byte goes unchecked.

Readers raise ``CorruptSnapshot`` naming what failed, and write only inside
the target directory they are given: member names must be the manifest's
``chaindb/<file>`` entries.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import tarfile
import time
import zlib
from pathlib import Path
from typing import BinaryIO

from snapshot.manifest import DB_DIR, MANIFEST_NAME, CorruptSnapshot, FileEntry, Manifest, parse_manifest
from snapshot.progress import Progress

CHUNK = 1024 * 1024
GZIP_LEVEL = 1  # LevelDB blocks are snappy-compressed already: fast beats small here
_SAFE_ENTRY = re.compile(rf"^{DB_DIR}/[A-Za-z0-9._-]+$")
_ARCHIVE_ERRORS = (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError)


def gzip_header() -> bytes:
    """The 10-byte gzip header this module writes (no name, mtime 0); readers require exactly it."""
    sink = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=GZIP_LEVEL, mtime=0):
        pass
    return sink.getvalue()[:10]


def write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def hash_file(path: Path, progress: Progress) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            progress.advance(len(chunk))
        os.fsync(handle.fileno())
    return digest.hexdigest()


class _Counting:
    """A readable that reports the bytes read through it to a progress line."""

    def __init__(self, handle: BinaryIO, progress: Progress) -> None:
        self.handle = handle
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.progress.advance(len(data))
        return data


def write_archive(workdir: Path, manifest: Manifest, target: Path, progress: Progress) -> None:
    """``workdir``'s ``chaindb/`` and ``manifest`` as one gzip tar stream at ``target``."""
    progress.phase("archive", manifest.size)
    raw = manifest.to_json()
    with open(target, "wb") as sink:
        with gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=GZIP_LEVEL, mtime=0) as compressed:
            with tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as archive:
                info = tarfile.TarInfo(MANIFEST_NAME)
                info.size, info.mtime, info.mode = len(raw), int(time.time()), 0o644
                archive.addfile(info, io.BytesIO(raw))
                for entry in manifest.files:
                    info = tarfile.TarInfo(entry.path)
                    info.size, info.mtime, info.mode = entry.size, int(time.time()), 0o644
                    with open(workdir / entry.path, "rb") as handle:
                        archive.addfile(info, _Counting(handle, progress))  # type: ignore[arg-type]
        sink.flush()
        os.fsync(sink.fileno())


def _check_entries(manifest: Manifest, where: str) -> None:
    for entry in manifest.files:
        if not _SAFE_ENTRY.match(entry.path):
            raise CorruptSnapshot(f"{where}: the manifest lists {entry.path!r}, which is not a chaindb/ file name")


def read_manifest(path: Path) -> Manifest:
    """The verified manifest of a snapshot directory or archive; reads nothing else of an archive."""
    path = Path(path)
    if path.is_dir():
        manifest_path = path / MANIFEST_NAME
        if not manifest_path.exists():
            raise CorruptSnapshot(f"{path}: no {MANIFEST_NAME}: not a snapshot directory")
        manifest = parse_manifest(manifest_path.read_bytes(), str(path))
    else:
        with _Archive(path) as archive:
            manifest = archive.manifest()
    _check_entries(manifest, str(path))
    return manifest


def extract(path: Path, manifest: Manifest, target: Path, progress: Progress) -> None:
    """Copy the snapshot's ``chaindb/`` files under ``target``, verifying every one of them."""
    path = Path(path)
    _check_entries(manifest, str(path))
    progress.phase("restore", manifest.size)
    (target / DB_DIR).mkdir(parents=True, exist_ok=False)
    if path.is_dir():
        for entry in manifest.files:
            source = path / entry.path
            if not source.is_file():
                raise CorruptSnapshot(f"{path}: {entry.path} is missing")
            with open(source, "rb") as handle:
                _copy_verified(handle, entry, target, progress, str(path))
    else:
        _extract_archive(path, manifest, target, progress)
    fsync_dir(target / DB_DIR)


def _copy_verified(handle: BinaryIO, entry: FileEntry, target: Path, progress: Progress, where: str) -> None:
    digest = hashlib.sha256()
    size = 0
    with open(target / entry.path, "wb") as sink:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            sink.write(chunk)
            size += len(chunk)
            progress.advance(len(chunk))
        sink.flush()
        os.fsync(sink.fileno())
    if size != entry.size or digest.hexdigest() != entry.sha256:
        raise CorruptSnapshot(
            f"{where}: {entry.path} does not match its checksum ({size} bytes, sha256 {digest.hexdigest()}; "
            f"the manifest says {entry.size} bytes, sha256 {entry.sha256}): the snapshot is damaged"
        )


class _Archive:
    """A snapshot archive opened for reading: its gzip header checked, its tar members in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.raw = open(path, "rb")
        header = self.raw.read(10)
        if header != gzip_header():
            self.raw.close()
            raise CorruptSnapshot(f"{path}: not an ethercattle snapshot archive (unexpected gzip header {header.hex()})")
        self.raw.seek(0)
        self.gz = gzip.GzipFile(fileobj=self.raw, mode="rb")
        try:
            self.tar = tarfile.open(fileobj=self.gz, mode="r|")
        except _ARCHIVE_ERRORS as exc:
            self.close()
            raise self.damaged(exc) from None
        self._members = iter(self.tar)

    def damaged(self, exc: BaseException) -> CorruptSnapshot:
        return CorruptSnapshot(f"{self.path}: the archive is damaged ({exc or type(exc).__name__})")

    def next_member(self) -> tarfile.TarInfo | None:
        try:
            return next(self._members, None)
        except _ARCHIVE_ERRORS as exc:
            raise self.damaged(exc) from None

    def manifest(self) -> Manifest:
        """The first member, which must be the manifest, verified."""
        first = self.next_member()
        if first is None or first.name != MANIFEST_NAME or not first.isfile():
            raise CorruptSnapshot(f"{self.path}: the archive does not start with {MANIFEST_NAME}")
        handle = self.tar.extractfile(first)
        assert handle is not None
        try:
            raw = handle.read()
        except _ARCHIVE_ERRORS as exc:
            raise self.damaged(exc) from None
        return parse_manifest(raw, str(self.path))

    def drain(self) -> None:
        """Read to the end: gzip checks its CRC and length there, and refuses trailing bytes."""
        try:
            while self.gz.read(CHUNK):
                pass
        except _ARCHIVE_ERRORS as exc:
            raise self.damaged(exc) from None

    def close(self) -> None:
        self.gz.close()
        self.raw.close()

    def __enter__(self) -> "_Archive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _extract_archive(path: Path, manifest: Manifest, target: Path, progress: Progress) -> None:
    expected = {entry.path: entry for entry in manifest.files}
    seen: set[str] = set()
    with _Archive(path) as archive:
        if archive.manifest().checksum != manifest.checksum:
            raise CorruptSnapshot(f"{path}: the archive's manifest changed since it was read")
        while (member := archive.next_member()) is not None:
            entry = expected.get(member.name)
            if entry is None or member.name in seen or not member.isfile():
                raise CorruptSnapshot(f"{path}: unexpected archive member {member.name!r}")
            seen.add(member.name)
            handle = archive.tar.extractfile(member)
            assert handle is not None
            try:
                _copy_verified(handle, entry, target, progress, str(path))  # type: ignore[arg-type]
            except _ARCHIVE_ERRORS as exc:
                raise archive.damaged(exc) from None
        archive.drain()
    missing = expected.keys() - seen
    if missing:
        raise CorruptSnapshot(f"{path}: the archive lacks {', '.join(sorted(missing))}")
