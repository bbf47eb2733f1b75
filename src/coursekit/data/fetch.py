"""Downloading honestly: fail fast when offline, and leave nothing behind when it fails.

torchvision's downloader resolves each mirror in turn with no timeout, so on a machine
without network the error can take a long DNS wait to arrive. :func:`reachable` first tries
to open one TCP connection to any mirror (or to the configured HTTP proxy) in background
threads and gives up after :func:`probe_timeout` seconds (``$COURSEKIT_PROBE_TIMEOUT``;
default :data:`PROBE_TIMEOUT_S`), so the offline error comes in under a second and
no download is attempted. :func:`leave_no_trace` removes the partial files and the empty
folders a failed download created (whole archives that did arrive are kept).
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

PROBE_TIMEOUT_ENV = "COURSEKIT_PROBE_TIMEOUT"
PROBE_TIMEOUT_S = 0.8  # DNS + TCP handshake to a mirror; well under a second
DOWNLOAD_TIMEOUT_S = 30.0  # a stalled connection during the download itself


def probe_timeout() -> float:
    configured = os.environ.get(PROBE_TIMEOUT_ENV)
    if configured:
        try:
            value = float(configured)
        except ValueError:
            raise ValueError(f"${PROBE_TIMEOUT_ENV} must be a number of seconds, "
                             f"not {configured!r}") from None
        if value > 0:
            return value
    return PROBE_TIMEOUT_S


def endpoints(urls: list[str]) -> list[tuple[str, int]]:
    """(host, port) to try for each URL: its server, or the proxy urllib would use for it."""
    proxies = urllib.request.getproxies()
    out: list[tuple[str, int]] = []
    for url in urls:
        parts = urlsplit(url)
        proxy = proxies.get(parts.scheme)
        if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
            proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            target = (proxy_parts.hostname or "", proxy_parts.port or 80)
        else:
            target = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        if target[0] and target not in out:
            out.append(target)
    return out


def reachable(targets: list[tuple[str, int]], timeout: float) -> bool:
    """Whether any target accepts a TCP connection within ``timeout`` seconds in all.

    Each attempt runs in a daemon thread, because name resolution itself has no timeout.
    """
    if not targets:
        return False
    answers: queue.SimpleQueue[bool] = queue.SimpleQueue()

    def attempt(host: str, port: int) -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answers.put(True)
        except OSError:
            answers.put(False)

    for host, port in targets:
        threading.Thread(target=attempt, args=(host, port), daemon=True,
                         name=f"coursekit-probe-{host}").start()
    deadline = time.monotonic() + timeout
    for _ in targets:
        try:
            if answers.get(timeout=max(0.0, deadline - time.monotonic())):
                return True
        except queue.Empty:
            return False
    return False


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Bound every blocking socket operation (urllib's default is to wait forever)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


@contextlib.contextmanager
def leave_no_trace(folder: Path, keep: Callable[[Path], bool] = lambda path: False
                   ) -> Iterator[None]:
    """If the body fails, remove the files it added to ``folder`` (except those ``keep``
    accepts: archives that arrived whole) and the folders it created, when left empty."""
    created = []
    for path in [folder, *folder.parents]:
        if path.exists():
            break
        created.append(path)
    before = set(os.listdir(folder)) if folder.is_dir() else set()
    try:
        yield
    except BaseException:
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name not in before and path.is_file() and not keep(path):
                    with contextlib.suppress(OSError):
                        path.unlink()
        for path in created:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()  # refuses, harmlessly, when something else is inside
        raise
