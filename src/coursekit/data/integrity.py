"""Is every dataset file intact? Checksums of archives *and* of the files extracted from them.

torchvision's tables give the md5 of each downloaded ``.gz`` archive, but MNIST-style sets
are read from the *extracted* ``*-ubyte`` files, which torchvision never checks: a truncated
one fails with a reshape error that names no file, and an altered one loads silently.
:data:`EXTRACTED` records the size and sha256 of the file that each verified archive
decompresses to (keyed by the archive's md5, so it stays tied to torchvision's table), and
:func:`extract` decompresses an archive atomically and checks the result against it.

Hashing the 55 MB of MNIST takes a fraction of a second; :class:`DigestCache` remembers
digests in a small JSON file next to the data, keyed by each file's size, mtime, ctime and
inode. Any write changes the ctime, which no tool can set back, so an edited file is always
hashed again. As in git, a digest is only remembered for a file whose timestamps are older
than :data:`RACY_NS`, so an edit within the same clock tick cannot hide behind a stale entry.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import time
from pathlib import Path

from coursekit.util.atomic import write_atomic

CACHE_NAME = ".coursekit-digests.json"
CACHE_FORMAT = 1
RACY_NS = 2_000_000_000  # files touched less than 2 s ago are hashed but not cached
CHUNK = 1 << 20

# Archive md5 (torchvision's table) -> (size, sha256) of the file it decompresses to.
# Computed once from the verified archives; tests/test_data.py re-derives it from them.
EXTRACTED: dict[str, tuple[int, str]] = {
    # MNIST
    "f68b3c2dcbeaaa9fbdd348bbdeb94873": (
        47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "d53e105ee54ea40749a09fcbcd1e9432": (
        60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "9fb629c4189551a2d022fa330f9573f3": (
        7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "ec29112dd5afa0611ce80d1b7f02629c": (
        10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    # Fashion-MNIST
    "8d4fb7e6c68d591d4c3dfef9ec88bf0d": (
        47040016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "25c81989df183df01b3e8a0aad5dffbe": (
        60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "bef4ecab320f06d8554ea6380940ec79": (
        7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "bb300cfdad3c16e7a12a480ee83cd310": (
        10008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class DigestCache:
    """Digests of the files in one folder, remembered in ``folder/CACHE_NAME`` when writable."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / CACHE_NAME
        self.entries: dict[str, dict] = {}
        self.dirty = False
        with contextlib.suppress(OSError, ValueError, AttributeError, KeyError, TypeError):
            stored = json.loads(self.path.read_text())
            if stored.get("format") == CACHE_FORMAT:
                self.entries = dict(stored["files"])

    def digest(self, path: Path, algorithm: str) -> str:
        key = _stat_key(path)
        entry = self.entries.get(path.name)
        if not isinstance(entry, dict):
            entry = None
        if entry is not None and entry.get("stat") == key and algorithm in entry:
            return entry[algorithm]
        value = hash_file(path, algorithm)
        if key == _stat_key(path) and not _racy(key):  # unchanged while we read it, and old
            if entry is None or entry.get("stat") != key:
                entry = {"stat": key}
            entry[algorithm] = value
            self.entries[path.name] = entry
            self.dirty = True
        return value

    def save(self) -> None:
        """Write the cache if it changed; a read-only data folder simply stays uncached."""
        if not self.dirty or not writable(self.folder):
            return
        present = {name: entry for name, entry in self.entries.items()
                   if (self.folder / name).is_file()}
        with contextlib.suppress(OSError):
            write_atomic(self.path, json.dumps({"format": CACHE_FORMAT, "files": present},
                                               indent=1, sort_keys=True) + "\n")
            self.dirty = False


def writable(folder: Path) -> bool:
    """Writable, and meant to be: a folder without write bits is left alone even by root."""
    try:
        return bool(folder.stat().st_mode & 0o222) and os.access(folder, os.W_OK)
    except OSError:
        return False


def _racy(key: list[int]) -> bool:
    _, mtime_ns, ctime_ns, _ = key
    return time.time_ns() - max(mtime_ns, ctime_ns) < RACY_NS


def extracted_problem(path: Path, archive_md5: str, cache: DigestCache,
                      archive_verified: bool = False) -> str | None:
    """Why the extracted ``path`` is not what the archive with ``archive_md5`` holds (or None).

    Looks the archive up in :data:`EXTRACTED`; an archive it does not know (a newer
    torchvision table) is decompressed to compare with, when it sits verified next to ``path``.
    """
    expected = EXTRACTED.get(archive_md5)
    if expected is None:
        if not archive_verified:
            return None  # nothing trustworthy to compare with
        expected = reference(path.with_name(path.name + ".gz"))
    size, sha256 = expected
    actual = path.stat().st_size
    if actual != size:
        kind = "truncated" if actual < size else "too long"
        return f"{kind}: {actual:,} bytes, expected {size:,}"
    actual_sha = cache.digest(path, "sha256")
    if actual_sha != sha256:
        return (f"altered: right size, but sha256 {actual_sha[:12]}… where the archive "
                f"holds {sha256[:12]}…")
    return None


def reference(archive: Path) -> tuple[int, str]:
    """(size, sha256) of what ``archive`` decompresses to."""
    digest, size = hashlib.sha256(), 0
    with gzip.open(archive, "rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def extract(archive: Path, archive_md5: str) -> Path:
    """Decompress a verified ``.gz`` next to itself, atomically, and check the result.

    Each caller writes its own temporary file and renames it into place
    (:func:`~coursekit.util.atomic.write_atomic`), so processes that extract the same archive
    at once (parallel notebooks) all succeed with the same bytes.
    """
    target = archive.with_name(archive.name.removesuffix(".gz"))
    expected = EXTRACTED.get(archive_md5)  # unknown archive: its verified md5 is the check

    def decompress(handle) -> None:
        digest, size = hashlib.sha256(), 0
        with gzip.open(archive, "rb") as stream:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        if expected is not None and (size, digest.hexdigest()) != expected:
            raise OSError(f"{archive} decompressed to {size:,} bytes that differ from the "
                          f"expected content ({expected[0]:,} bytes); delete {archive} and "
                          "download it again.")

    return write_atomic(target, decompress)

