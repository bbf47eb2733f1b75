"""Atomic file writes: a reader sees either the old file or the complete new one, never half.

Checkpoints and gradebooks both need this: the content goes to a temporary file in the same
folder, is flushed to disk, and is renamed over the target (a single, atomic step on POSIX).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"
ABANDONED_S = 600  # a temporary file untouched this long was left by a killed writer


def write_atomic(path: str | Path, content: bytes | str | Callable[[BinaryIO], None]) -> Path:
    """Write ``content`` (bytes, text as UTF-8, or a function that writes to a binary file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a normal file's mode
        with os.fdopen(fd, "wb") as handle:
            if callable(content):
                content(handle)
            else:
                handle.write(content.encode("utf-8") if isinstance(content, str) else content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files left by a writer that was killed mid-write.

    Only old ones: a recent temporary may belong to another process writing the same file
    right now (two notebooks extracting one archive), and deleting it would fail that write.
    """
    for stale in path.parent.glob(f".{path.name}.*{TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > ABANDONED_S:
                stale.unlink()


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
