"""Kue's options through the course's kind of processor (`work()`, worker processes):
delayed jobs promoted with nothing else running, a shutdown timeout, and a worker killed
in the middle of a try with attempts left."""

import importlib
import os
import signal

import pytest
from rq import Queue
from rq.job import Job, JobStatus

from harness.waiting import wait_until
from queuing.job_queue import JobCreator
from queuing.job_queue.events import clean_up_abandoned_jobs
from tests import held_jobs

pytestmark = pytest.mark.slow  # processors run as processes

PROCESSOR = "tests/options_processor.py"
# Two worker processes (two jobs at a time each): one killed, the other tries its job again.
TWO_PROCESSES = {"PROCESSES": "2"}
NOT_PROCESSED = "tests.option_jobs.records_its_run"


def ends_heard(connection) -> tuple[JobCreator, list[tuple]]:
    heard: list[tuple] = []
    creator = JobCreator(
        Queue("options", connection=connection),
        promoted=lambda job_id: heard.append(("promoted", job_id)),
        failed_attempt=lambda job_id, error, made: heard.append(("attempt", job_id, error, made)),
        failed=lambda job_id, error: heard.append(("failed", job_id, error)),
        completed=lambda job_id: heard.append(("completed", job_id)),
    )
    return creator, heard


def kill_its_worker_then_see_it_tried_again(queue: Queue, job: Job) -> None:
    """kill -9 of the process running `job`, then RQ's cleanup (which creators and
    processors run) until the job, abandoned, is tried again by another worker."""
    worker = Job.fetch(job.id, connection=queue.connection).worker_name
    os.kill(int(queue.connection.hget(f"rq:worker:{worker}", "pid")), signal.SIGKILL)

    def tried_again() -> bool:
        clean_up_abandoned_jobs(queue)
        job.refresh()
        return job.get_status() == JobStatus.STARTED and job.worker_name != worker

    wait_until(tried_again, timeout=60, what="the job tried again")


def test_a_processor_promotes_delayed_jobs_itself(redis_url, connection, start_script):
    start_script(PROCESSOR, redis_url)
    creator, heard = ends_heard(connection)
    job = creator.create(NOT_PROCESSED, {"name": "in a second"}, delay=1)
    creator.wait()
    assert heard == [("promoted", job.id), ("completed", job.id)]


def test_a_shutdown_timeout_fails_the_job_in_hand(redis_url, connection, start_script):
    processor = start_script(PROCESSOR, redis_url, SHUTDOWN_TIMEOUT="1")
    creator, heard = ends_heard(connection)
    job = creator.create("tests.option_jobs.sleeps_a_minute", {})
    wait_until(lambda: job.get_status(refresh=True) == JobStatus.STARTED, what="job started")
    processor.interrupt()  # Ctrl-C: stop, the job in hand given 1 s
    creator.wait()
    assert heard == [("failed", job.id, "Shut down before the job ended")]
    assert processor.wait() == 0
    processor.assert_no_traceback()
    assert Queue("options", connection=connection).started_job_registry.count == 0


def test_a_job_whose_worker_is_killed_mid_try_is_tried_again_and_ends_once(
    redis_url, connection, start_script
):
    start_script(PROCESSOR, redis_url, **TWO_PROCESSES)
    creator, heard = ends_heard(connection)
    queue = Queue("options", connection=connection)
    # A short timeout: its worker's heartbeat, and so the wait for its abandonment, too.
    job = creator.create("tests.held_jobs.waits_for_the_word", {}, job_timeout=2, attempts=2)
    wait_until(lambda: job.get_status(refresh=True) == JobStatus.STARTED, what="job started")
    kill_its_worker_then_see_it_tried_again(queue, job)
    held_jobs.let_end(job)  # now, not before: the killed try's BLPOP could have taken it
    creator.wait()
    assert heard == [
        ("attempt", job.id, "Job abandoned: its worker stopped before the job ended", 1),
        ("completed", job.id),
    ]
    assert Job.fetch(job.id, connection=connection).get_status() == "finished"


def test_a_retried_seat_job_takes_exactly_one_seat(redis_url, connection, start_script):
    """Its first try takes a seat and dies; the second finds its claim and takes none."""
    seat_app = importlib.import_module("100_seat")
    seat_app.Seats(connection).reserve_seat(50)
    start_script(PROCESSOR, redis_url, **TWO_PROCESSES)
    creator, heard = ends_heard(connection)
    queue = Queue("options", connection=connection)
    job = creator.create("tests.option_jobs.takes_a_seat_then_waits", {}, job_timeout=2, attempts=2)
    wait_until(lambda: connection.sismember("reserved_seats", job.id), what="a seat taken")
    kill_its_worker_then_see_it_tried_again(queue, job)
    connection.set(f"test:may_end:{job.id}", 1)
    creator.wait()
    assert heard[-1] == ("completed", job.id)
    assert connection.get("available_seats") == b"49"
    assert connection.smembers("reserved_seats") == {job.id.encode()}
