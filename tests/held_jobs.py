"""Jobs a test holds in hand, so that it can do something to Redis or the worker while
a job runs: each runs until the test's word, and fails after a minute without it.

- `waits_for_the_test`, for a worker in the test's own process: the word is an Event
  (`may_end`), which reaches the job even while Redis is down.
- `waits_for_the_word`, for a worker in another process: the word (`let_end(job)`)
  comes through Redis.
"""

import threading

from rq import get_current_job

running = threading.Event()  # set once a job of this process has begun
may_end = threading.Event()  # the test's word to this process's jobs


def waits_for_the_test(data: dict) -> str:
    running.set()
    if not may_end.wait(timeout=60):
        raise TimeoutError("the test never let the job end")
    return get_current_job().id


def reset() -> None:
    running.clear()
    may_end.clear()


def may_end_key(job_id: str) -> str:
    return f"test:may_end:{job_id}"


def waits_for_the_word(data: dict) -> str:
    job = get_current_job()
    if job.connection.blpop([may_end_key(job.id)], timeout=60) is None:
        raise TimeoutError("the test never let the job end")
    return job.id


def let_end(job) -> None:
    """The test's word to a job of another process: it may end."""
    job.connection.rpush(may_end_key(job.id), "go")
