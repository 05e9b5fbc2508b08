"""Jobs for the tests of Kue's job options: each leaves in Redis what a test reads (the
order jobs ran in, when each try began), from Redis's own clock."""

import importlib
import time

from rq import get_current_job

from queuing.job_queue import log_line, report_progress

RUNS_KEY = "test:runs"  # the names of the jobs, in the order they ran


def tries_key(job_id: str) -> str:
    return f"test:tries:{job_id}"


def _redis_now(job) -> float:
    seconds, microseconds = job.connection.time()
    return seconds + microseconds / 1e6


def records_its_run(data: dict) -> dict:
    job = get_current_job()
    job.connection.rpush(RUNS_KEY, data["name"])
    return {"name": data["name"], "started": _redis_now(job)}


def fails_until(data: dict) -> str:
    """Fails its tries before the `succeeds_on`-th (never, without it), each try's start
    recorded in tries_key(job id)."""
    job = get_current_job()
    tries = job.connection.rpush(tries_key(job.id), _redis_now(job))
    if tries < data.get("succeeds_on", float("inf")):
        raise ValueError(f"try {tries} failed")
    return f"succeeded on try {tries}"


def runs_long(data: dict) -> None:
    """Runs a minute, in short sleeps: a timeout raised into its thread stops it soon."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.02)


def logs_and_reports(data: dict) -> dict:
    log_line("sending to %s", data["to"])
    report_progress(1, 2, {"step": "half way"})
    log_line({"sent": True})
    return {"to": data["to"], "sent": True}


def sleeps_a_minute(data: dict) -> None:
    """One long sleep: only a signal cuts it short."""
    time.sleep(60)


def takes_a_seat_then_waits(data: dict) -> int:
    """The seat app's job, then a wait for the test's word (a key it sets, read, never
    taken: a killed try must not eat the word of the next one)."""
    seat_app = importlib.import_module("100_seat")  # the course's app, by its file name
    left = seat_app.reserve_seat_job(data)
    job = get_current_job()
    deadline = time.monotonic() + 60
    while not job.connection.exists(f"test:may_end:{job.id}"):
        if time.monotonic() > deadline:
            raise TimeoutError("the test never let the job end")
        time.sleep(0.02)
    return left
