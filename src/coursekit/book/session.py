"""The notebook session: what every chapter and lab records at its top and bottom.

A chapter starts with ``run = session.start(profile, seed)`` right after its papermill
``parameters`` cell and ends with ``run.finish()``. The first prints (and glues) the profile,
device, library versions and start time, so every executed notebook says how it was made;
the second reports the wall time.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import torch

from coursekit import __version__
from coursekit.book.profiles import Profile, get_profile
from coursekit.util.device import select_device
from coursekit.util.repro import seed_everything, set_deterministic
from coursekit.viz.style import use_book_style


@dataclass
class Session:
    """Settings and bookkeeping for one executed notebook."""

    profile: Profile
    device: torch.device
    seed: int
    started: datetime
    wall_time: float | None = None
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    def record(self) -> dict[str, str]:
        """The facts printed at the top of the notebook."""
        return {
            "profile": self.profile.name,
            "device": _describe(self.device),
            "torch": torch.__version__,
            "coursekit": __version__,
            "python": platform.python_version(),
            "seed": str(self.seed),
            "started": self.started.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def finish(self) -> None:
        """Print and glue the wall time (kept in ``wall_time``, seconds)."""
        seconds = self.wall_time = self.elapsed()
        where = f"{self.profile.name} profile on {_describe(self.device)}"
        print(f"Wall time: {seconds:.1f} s ({where})")
        _glue("wall_time", f"{seconds:.0f} s")


def start(profile: str | None = "auto", seed: int = 0, *, deterministic: bool = True) -> Session:
    """Resolve the profile, pick the device, seed everything, style figures, print the record."""
    resolved = get_profile(profile)
    use_book_style()
    seed_everything(seed)
    set_deterministic(deterministic)
    run = Session(
        profile=resolved,
        device=select_device(),
        seed=seed,
        started=datetime.now(timezone.utc),
    )
    width = max(map(len, run.record()))
    for key, value in run.record().items():
        print(f"{key:<{width}}  {value}")
    _glue("profile", resolved.name)
    _glue("device", _describe(run.device))
    _glue("torch_version", torch.__version__)
    return run


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def _glue(name: str, value: str) -> None:
    """Glue a value for the book's prose when running under Jupyter; a no-op elsewhere."""
    try:
        from IPython import get_ipython
        from myst_nb import glue
    except ImportError:  # plain Python: nothing to glue into
        return
    if get_ipython() is not None:
        glue(name, value, display=False)
