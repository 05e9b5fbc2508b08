"""Jobs that a test holds in hand: each waits for the test's word before it ends, so a
test can do something to Redis or the worker while the job runs."""

import threading

from rq import get_current_job

running = threading.Event()  # set once a job has begun
may_end = threading.Event()  # the test's word: the job may end


def waits_for_the_test(data: dict) -> str:
    running.set()
    if not may_end.wait(timeout=60):
        raise TimeoutError("the test never let the job end")
    return get_current_job().id


def reset() -> None:
    running.clear()
    may_end.clear()


def returns_at_once(data: dict) -> None:
    """A job that does nothing."""
