"""Committed chapter outputs must come from the committed code (and coursekit modules)."""

from pathlib import Path

import pytest

from coursekit.book import fingerprint
from coursekit.book.execute import COMMITTED_PROFILE, chapters

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", chapters(ROOT), ids=lambda p: p.name)
def test_committed_outputs_match_the_code(path):
    reasons = fingerprint.stale_reasons(path, expected_profile=COMMITTED_PROFILE)
    assert not reasons, (
        f"{path.relative_to(ROOT)} has stale outputs: " + "; ".join(reasons)
        + f".\nRegenerate it with: coursekit execute {path.relative_to(ROOT)} "
        f"--profile {COMMITTED_PROFILE}"
    )
