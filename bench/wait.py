"""Polling until something holds: how every scenario waits for the system."""

import time
from collections.abc import Callable


def wait_until(
    check: Callable[[], object],
    timeout_s: float,
    what: str,
    interval_s: float = 0.005,
) -> float:
    """Poll `check()` until true; the monotonic time it first was."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)
    return time.monotonic()
