"""Run profiles: the one place that turns "how much compute do I have?" into settings.

Every chapter and lab asks for a profile by name; nothing else in the project decides
subset sizes, epochs, batch sizes or the default dataset.

* ``smoke`` — CI: tiny real subsets, one short epoch, seconds per chapter.
* ``cpu``   — a reader's laptop: real results on MNIST / Fashion-MNIST, minutes per chapter.
              The committed notebook outputs are produced with this profile.
* ``full``  — a GPU: the slides' settings on CIFAR-10.
* ``auto``  — ``full`` when CUDA is available, otherwise ``cpu``.

The environment variable ``COURSEKIT_PROFILE`` overrides whatever a notebook asks for, so
CI can run every notebook in ``smoke`` without editing them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

PROFILE_ENV = "COURSEKIT_PROFILE"
NAMES = ("smoke", "cpu", "full")


@dataclass(frozen=True)
class Profile:
    """Concrete settings for one profile. ``None`` sizes mean "the whole split"."""

    name: str
    dataset: str  # default dataset for chapters that do not insist on one
    train_size: int | None
    test_size: int | None
    epochs: int
    batch_size: int
    eval_batch_size: int
    num_workers: int

    def choose(self, *, smoke: Any, cpu: Any, full: Any) -> Any:
        """Pick a chapter-specific value (a width sweep, a step count) for this profile."""
        return {"smoke": smoke, "cpu": cpu, "full": full}[self.name]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_PROFILES = {
    "smoke": Profile(
        name="smoke", dataset="mnist", train_size=512, test_size=256, epochs=1,
        batch_size=64, eval_batch_size=256, num_workers=0,
    ),
    "cpu": Profile(
        name="cpu", dataset="mnist", train_size=None, test_size=None, epochs=3,
        batch_size=128, eval_batch_size=1000, num_workers=0,
    ),
    "full": Profile(
        name="full", dataset="cifar10", train_size=None, test_size=None, epochs=30,
        batch_size=128, eval_batch_size=1000, num_workers=4,
    ),
}


def resolve_name(name: str | None = "auto", *, use_env: bool = True) -> str:
    """Apply the environment override and expand ``auto``; reject unknown names clearly.

    ``use_env=False`` is for tools given an explicit profile on their command line.
    """
    requested = (os.environ.get(PROFILE_ENV) if use_env else None) or name or "auto"
    requested = requested.strip().lower()
    if requested == "auto":
        return "full" if torch.cuda.is_available() else "cpu"
    if requested not in _PROFILES:
        from_env = use_env and os.environ.get(PROFILE_ENV)
        source = f"${PROFILE_ENV}" if from_env else "the profile argument"
        raise ValueError(
            f"Unknown profile {requested!r} (from {source}). "
            f"Choose one of: auto, {', '.join(NAMES)}."
        )
    return requested


def get_profile(name: str | None = "auto", **overrides: Any) -> Profile:
    """Return the settings for ``name`` (after ``COURSEKIT_PROFILE`` and ``auto``)."""
    profile = _PROFILES[resolve_name(name)]
    return replace(profile, **overrides) if overrides else profile
