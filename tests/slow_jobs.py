"""A job for the tests that need one in hand: slow enough to be caught mid-job."""

import time

from job_queue import report_progress


def slow_job(data: dict) -> None:
    report_progress(0)
    time.sleep(data["seconds"])
    report_progress(100)
    print(f"Slow job done after {data['seconds']} s")
