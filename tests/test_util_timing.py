"""The timer for figures: it runs the function and returns a positive median (never asserted
against a bound: a busy machine changes it)."""

import pytest

from coursekit.util.timing import seconds


def test_seconds_calls_the_function_and_returns_a_positive_median():
    calls = []
    median = seconds(lambda: calls.append(1), min_run_time=0.01)
    assert median > 0 and len(calls) >= 1


def test_seconds_refuses_a_non_positive_run_time():
    with pytest.raises(ValueError, match="positive"):
        seconds(lambda: None, min_run_time=0)
