"""A job for the tests that need one in hand: slow enough to be caught mid-job."""

import time

from queuing.job_queue import report_progress


def slow_job(data: dict) -> None:
    report_progress(0)
    # In short sleeps: a timeout raised in a worker thread (job_timeouts) takes effect
    # between two Python instructions, not within one long sleep.
    deadline = time.monotonic() + data["seconds"]
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    report_progress(100)
    print(f"Slow job done after {data['seconds']} s")
