"""Checkpoints that survive a crash: written atomically, holding what an exact resume needs.

A checkpoint is a plain ``dict`` saved with ``torch.save``. :func:`save` writes it to a
temporary file in the same folder, flushes it to disk and renames it over the old one, so
a process killed at any instant leaves either the previous checkpoint or the new one,
never half a file. :func:`rng_state` / :func:`set_rng_state` capture and restore every
random number generator the trainer touches (Python, NumPy, torch CPU and CUDA), which is
what makes a resumed run draw the same dropout masks and augmentations.

Everything is stored as tensors and builtin types so that :func:`load` can use
``torch.load(weights_only=True)``, which refuses to run code from a tampered file.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from coursekit.util.atomic import write_atomic


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used."""


def save(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename)."""
    return write_atomic(path, lambda handle: torch.save(state, handle))


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`; a clear error if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}; train with checkpoint={str(path)!r} "
                                "first, or pass resume=False to start from scratch.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as error:
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(error).__name__}: {error}). "
            "Delete it to start from scratch."
        ) from error


def rng_state() -> dict[str, Any]:
    """The state of every generator: Python ``random``, NumPy, torch CPU and (if used) CUDA."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
