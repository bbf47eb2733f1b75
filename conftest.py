"""Root pytest configuration: runs before any test or notebook kernel starts.

Notebooks collected by nbval run in the ``smoke`` profile on real data: the profile comes
from ``COURSEKIT_PROFILE`` and the data root from ``COURSEKIT_DATA``, which default here to
``smoke`` and a writable copy of ``../shared/data`` (torchvision extracts next to archives).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).parent
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("COURSEKIT_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
if "COURSEKIT_DATA" not in os.environ and SHARED_DATA.is_dir():
    copy = Path(tempfile.gettempdir()) / "coursekit-test-data"
    if not copy.exists():
        shutil.copytree(SHARED_DATA, copy)
        for path in copy.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
    os.environ["COURSEKIT_DATA"] = str(copy)

_notebook_seconds: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    """Add up the time nbval spends per notebook (one item per cell)."""
    if report.when == "call" and ".ipynb::" in report.nodeid:
        _notebook_seconds[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter):
    timings = dict(_notebook_seconds)
    timings.update(getattr(terminalreporter.config, "_coursekit_notebook_times", {}))
    if timings:
        terminalreporter.section("notebook execution times (smoke profile)")
        for name, seconds in sorted(timings.items()):
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
