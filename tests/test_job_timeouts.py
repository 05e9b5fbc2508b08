"""job_timeouts: a job run in a thread is stopped past its timeout, with RQ's exception
and message, by one watching thread for the whole process; a job that ended in time is
left alone."""

import threading
import time

import redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.timeouts import JobTimeoutException, TimerDeathPenalty

from queuing import job_timeouts
from queuing.job_queue import create_job
from queuing.job_queue.processes import _ThreadJobWorker
from queuing.job_timeouts import WatchedDeathPenalty


def run_in_thread(seconds: int, outcome: list) -> threading.Thread:
    """A 'job' that would run for a minute, under a timeout of `seconds`, in a thread of
    its own; what stopped it goes into `outcome`."""

    def job() -> None:
        try:
            with WatchedDeathPenalty(seconds, JobTimeoutException):
                for _ in range(6000):
                    time.sleep(0.01)
        except JobTimeoutException as stopped:
            outcome.append(stopped)

    thread = threading.Thread(target=job)
    thread.start()
    return thread


def test_a_job_past_its_timeout_is_stopped_with_rq_s_message():
    with TimerDeathPenalty(60, JobTimeoutException):  # it rewrites the exception's __init__
        pass
    outcome: list = []
    run_in_thread(1, outcome).join(10)
    [stopped] = outcome
    assert isinstance(stopped, JobTimeoutException)
    assert type(stopped).__name__ == "JobTimeoutException"
    assert str(stopped) == "Task exceeded maximum timeout value (1 seconds)"


def test_each_thread_is_stopped_at_its_own_deadline():
    outcome: list = []
    later = run_in_thread(3, outcome)
    sooner = run_in_thread(1, outcome)  # nearer than what the watcher waits for
    sooner.join(10)
    later.join(10)
    assert [str(stopped) for stopped in outcome] == [
        "Task exceeded maximum timeout value (1 seconds)",
        "Task exceeded maximum timeout value (3 seconds)",
    ]


def test_a_job_that_ended_in_time_is_left_alone():
    with WatchedDeathPenalty(1, JobTimeoutException):
        pass
    assert threading.get_ident() not in job_timeouts._DEADLINES._due
    # A job with a later deadline, stopped: the watcher has gone past this thread's
    # deadline, and raised nothing here (it would surface as this join returns).
    outcome: list = []
    run_in_thread(1, outcome).join(10)
    assert [str(stopped) for stopped in outcome] == [
        "Task exceeded maximum timeout value (1 seconds)"
    ]


def test_a_thread_worker_fails_a_job_past_its_timeout(redis_url):
    with redis.Redis.from_url(redis_url) as connection:
        queue = Queue("timeouts", connection=connection)
        job = create_job(queue, "tests.slow_jobs.slow_job", {"seconds": 60}, job_timeout=1)
        worker = _ThreadJobWorker([queue], connection=connection)
        thread = threading.Thread(target=worker.work, kwargs={"burst": True})
        thread.start()
        thread.join(20)
        job = Job.fetch(job.id, connection=connection)
        assert job.get_status() == JobStatus.FAILED
        assert job.latest_result().exc_string.strip().splitlines()[-1] == (
            "rq.timeouts.JobTimeoutException: Task exceeded maximum timeout value (1 seconds)"
        )
