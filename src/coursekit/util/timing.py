"""Wall-clock timing for figures that are shown, never asserted (a busy machine skews them).

:func:`seconds` is the median of repeated calls under ``torch.utils.benchmark.Timer``, which
runs on one thread and synchronizes CUDA, so two timings taken side by side compare fairly.
Claims about cost are checked on operation counts; a time only illustrates them.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.utils.benchmark import Timer


def seconds(fn: Callable[[], object], min_run_time: float = 0.2) -> float:
    """Median wall time of ``fn()`` in seconds, repeating it for at least ``min_run_time``."""
    if min_run_time <= 0:
        raise ValueError(f"min_run_time must be positive, got {min_run_time!r}.")
    timer = Timer("fn()", globals={"fn": fn})
    return timer.blocked_autorange(min_run_time=min_run_time).median
