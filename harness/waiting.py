"""Waiting on a condition, the one way the tests, the harness and the bench wait."""

import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], object], timeout: float = 20, what: str = "", every: float = 0.02
) -> None:
    """Check `condition` every `every` seconds until it holds; after `timeout` seconds,
    AssertionError naming `what` (or the condition)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or condition}")
        time.sleep(every)
