"""JobWorker keeps RQ's rules where its loop replaces RQ's: work()'s arguments, the
dequeue strategies, jobs that end otherwise than by returning or raising an Exception,
the heartbeat of a long job, errors in the loop, signals, the logs. RQ's own worker
tests check the rest (conformance/rq_suite.py)."""

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from unittest import mock

import pytest
import redis
from rq import Callback, Queue, SimpleWorker, Worker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.results import Result
from rq.serializers import JSONSerializer
from rq.suspension import resume, suspend
from rq.worker import WorkerStatus

from harness.waiting import wait_until
from queuing import rq_compat
from queuing.job_queue import JobWorker
from queuing.job_queue.processes import _ThreadJobWorker
from queuing.job_queue.step import renew_heartbeat
from tests.held_jobs import let_end
from tests.rq_cli import RQ
from tests.scripts import PROJECT, Script, script_env

RETURNS = "tests.worker_jobs.returns"
FAILS = "tests.worker_jobs.fails"
SLEEPS = "tests.worker_jobs.sleeps"
HELD = "tests.held_jobs.waits_for_the_word"


def statuses(jobs: list[Job]) -> list[str]:
    return [job.get_status(refresh=True) for job in jobs]


# ------------------------------------------------------------------ work()'s arguments


def test_max_jobs_stops_after_that_many(connection):
    queue = Queue("q", connection=connection)
    jobs = [queue.enqueue(RETURNS, {}) for _ in range(3)]
    worker = JobWorker([queue], connection=connection)
    assert worker.work(burst=True, max_jobs=2, logging_level="WARNING") is True
    assert statuses(jobs) == ["finished", "finished", "queued"]


def test_max_idle_time_stops_a_worker_that_has_nothing_to_do(connection):
    queue = Queue("q", connection=connection)
    worked = JobWorker([queue], connection=connection).work(max_idle_time=1)
    assert worked is False
    assert Worker.all(connection=connection) == []  # it ended, and said goodbye


def test_with_scheduler_a_burst_runs_the_jobs_due(connection):
    queue = Queue("q", connection=connection)
    job = queue.enqueue_in(timedelta(seconds=-1), RETURNS, {})
    assert job.get_status() == JobStatus.SCHEDULED
    JobWorker([queue], connection=connection).work(burst=True, with_scheduler=True)
    assert job.get_status(refresh=True) == JobStatus.FINISHED


def test_the_logging_arguments_are_rq_s(connection):
    queue = Queue("q", connection=connection)
    rq_logger = logging.getLogger("rq.worker")
    level = rq_logger.level
    try:
        JobWorker([queue], connection=connection).work(burst=True, logging_level="DEBUG")
        assert rq_logger.level == logging.DEBUG
    finally:
        rq_logger.setLevel(level)


# A JobWorker's work() with RQ's logging arguments, in a process of its own: RQ sets up
# its log handlers only where logging has none (pytest's capture is one).
WORKS_WITH_LOG_FORMATS = """
import os, redis
from rq import Queue
from queuing.job_queue import JobWorker
connection = redis.Redis.from_url(os.environ["REDIS_URL"])
JobWorker([Queue("q", connection=connection)], connection=connection).work(
    burst=True, logging_level="INFO", date_format="%Y", log_format="[%(asctime)s] %(message)s"
)
"""


def test_date_format_and_log_format_are_rq_s(redis_url, connection):
    job = Queue("q", connection=connection).enqueue(RETURNS, {})
    done = subprocess.run(
        [sys.executable, "-c", WORKS_WITH_LOG_FORMATS],
        cwd=PROJECT,
        env=script_env(redis_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.endswith(f"Job OK ({job.id})") for line in lines)
    assert all(re.match(r"\[\d{4}\] \S", line) for line in lines), lines


@pytest.mark.parametrize(
    ("strategy", "order"),
    [
        ("default", ["q0.0", "q0.1", "q1.0", "q1.1", "q2.0", "q2.1"]),
        ("round_robin", ["q0.0", "q1.0", "q2.0", "q0.1", "q1.1", "q2.1"]),
    ],
)
def test_the_dequeue_strategies_take_jobs_in_rq_s_order(connection, strategy, order):
    queues = [Queue(f"q{n}", connection=connection) for n in range(3)]
    jobs = [
        queue.enqueue(RETURNS, {"value": f"{queue.name}.{i}"}) for queue in queues for i in (0, 1)
    ]
    JobWorker(queues, connection=connection).work(burst=True, dequeue_strategy=strategy)
    for job in jobs:
        job.refresh()
    assert [job.return_value() for job in sorted(jobs, key=lambda job: job.started_at)] == order


# ------------------------------------------------------------------ how a job ends


@pytest.mark.parametrize("func", ["tests.worker_jobs.exits", "tests.worker_jobs.interrupted"])
def test_a_job_that_raises_a_base_exception_fails_and_the_worker_goes_on(connection, func):
    """As RQ's SimpleWorker: SystemExit or KeyboardInterrupt from a job fails that job."""
    queue = Queue("q", connection=connection)
    job, then = queue.enqueue(func, {}), queue.enqueue(RETURNS, {})
    assert JobWorker([queue], connection=connection).work(burst=True) is True
    assert statuses([job, then]) == ["failed", "finished"]
    assert job.id in FailedJobRegistry("q", connection=connection)
    assert StartedJobRegistry("q", connection=connection).get_job_ids() == []


def test_a_job_that_returns_retry_is_queued_again_as_rq_does(connection):
    queue = Queue("q", connection=connection)
    job = queue.enqueue("tests.worker_jobs.asks_to_be_retried", {})
    JobWorker([queue], connection=connection).work(burst=True, max_jobs=1)
    job.refresh()
    assert (job.get_status(), job.number_of_retries) == ("queued", 1)
    assert job.latest_result().type == Result.Type.RETRIED
    assert connection.keys("rq:execution:*") == []


def test_with_the_default_exception_handler_disabled_a_failed_job_is_not_recorded(connection):
    queue = Queue("q", connection=connection)
    job = queue.enqueue(FAILS, {})
    JobWorker([queue], connection=connection, disable_default_exception_handler=True).work(
        burst=True
    )
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert job.id not in FailedJobRegistry("q", connection=connection)
    assert job.latest_result() is None


def test_a_job_is_read_with_the_worker_s_serializer_as_in_rq(connection):
    """RQ's dequeue reads a job with the worker's serializer, whatever its queue
    object's: RQ's worker pool builds its workers' queues with the default one."""
    job = Queue("q", connection=connection, serializer=JSONSerializer).enqueue(RETURNS, {})
    queue = Queue("q", connection=connection)
    JobWorker([queue], connection=connection, serializer=JSONSerializer).work(burst=True)
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert job.latest_result().return_value == "done"


def test_a_job_rq_runs_for_a_worker_of_several_queues_is_not_left_in_between(connection):
    """RQ pops from several queues with LPOP, leaving nothing in an intermediate list
    (RQ's maintenance would fail a job found there a minute later)."""
    queues = [Queue(name, connection=connection) for name in ("high", "low")]
    own_callback = Callback("tests.worker_jobs.heard_of_success")
    job = queues[0].enqueue(RETURNS, {}, on_success=own_callback)  # left to RQ's code
    JobWorker(queues, connection=connection).work(burst=True)
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert connection.llen(queues[0].intermediate_queue_key) == 0


@pytest.mark.parametrize("worker_class", [SimpleWorker, JobWorker])
def test_a_job_kept_for_0_seconds_goes_once_its_dependents_are_queued(connection, worker_class):
    """A dependent queued while the job runs (the step could not see it coming) is
    queued once the job ends, then the job is deleted: RQ's order (SimpleWorker: the
    reference)."""
    queue = Queue("q", connection=connection)
    job = queue.enqueue("tests.worker_jobs.gets_a_dependent", {}, result_ttl=0)
    worker = worker_class([queue], connection=connection)
    worker.work(burst=True, max_jobs=1, logging_level="WARNING")
    (dependent_id,) = queue.get_job_ids()
    assert not Job.exists(job.id, connection=connection)
    assert Job.fetch(dependent_id, connection=connection).get_status() == JobStatus.QUEUED


# ------------------------------------------------------------------ a job's heartbeat


# Slow: two renewals a whole job_monitoring_interval apart (RQ's, in whole seconds).
@pytest.mark.slow
def test_a_job_without_a_timeout_is_kept_alive_while_it_runs(connection):
    queue = Queue("q", connection=connection)
    job = queue.enqueue(SLEEPS, {"seconds": 2.5}, job_timeout=-1)
    worker = JobWorker([queue], connection=connection, job_monitoring_interval=1)
    worker.work(burst=True)
    seen = job.return_value()
    # Until the next renewal (1 s) plus the margin, not -1 + 10, nor RQ's 420 s.
    assert 1 < seen["alive_for"] <= 1 + JobWorker.HEARTBEAT_MARGIN_SECONDS
    assert seen["last_heartbeat"] > seen["first_heartbeat"] + 1  # renewed as it ran
    assert connection.keys("rq:execution:*") == []
    # Once ended, an execution is not brought back by a late heartbeat.
    assert not renew_heartbeat(connection, worker.key, job, "ended", 90, 90)
    assert connection.keys("rq:execution:*") == []


# Slow: a job that outlives its heartbeat window three times over.
@pytest.mark.slow
def test_a_live_worker_s_job_outliving_its_window_is_never_called_abandoned(
    connection, monkeypatch
):
    """The window is the next renewal plus the margin, far shorter than the job: RQ's
    cleanup, run all along, never fails it."""
    monkeypatch.setattr(JobWorker, "HEARTBEAT_MARGIN_SECONDS", 1)
    queue = Queue("q", connection=connection)
    job = queue.enqueue(SLEEPS, {"seconds": 6}, job_timeout=30)
    worker = JobWorker([queue], connection=connection, job_monitoring_interval=1)
    done = threading.Event()

    def clean_up_all_along() -> None:
        registry = StartedJobRegistry("q", connection=connection)
        while not done.wait(0.1):
            registry.cleanup()

    cleaner = threading.Thread(target=clean_up_all_along)
    cleaner.start()
    try:
        worker.work(burst=True)
    finally:
        done.set()
        cleaner.join()
    assert 1 < job.return_value()["alive_for"] <= 2  # the window: 1 s + 1 s
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert job.id not in FailedJobRegistry("q", connection=connection)


def test_the_heartbeat_ttl_of_rq_s_path_is_simple_worker_s_for_no_timeout(connection):
    queue = Queue("q", connection=connection)
    job = queue.enqueue(RETURNS, {}, job_timeout=-1)
    assert JobWorker([queue], connection=connection).get_heartbeat_ttl(job) == (
        SimpleWorker([queue], connection=connection).get_heartbeat_ttl(job)
    )


# ------------------------------------------------------------------ errors, logs


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (redis.exceptions.TimeoutError, "Redis connection timeout, quitting..."),
        (RuntimeError, "found an unhandled exception, quitting..."),
    ],
)
def test_an_error_while_a_job_runs_ends_work_as_in_rq(connection, caplog, error, line):
    queue = Queue("q", connection=connection)
    queue.enqueue(RETURNS, {})
    worker = JobWorker([queue], connection=connection)
    worker.execute_job = mock.Mock(side_effect=error)  # RQ's code runs the job: it raises
    assert worker.work(burst=True) is False
    assert worker.execute_job.call_count == 1
    assert any(line in record.getMessage() for record in caplog.records)
    assert Worker.all(connection=connection) == []  # it said goodbye


@pytest.mark.parametrize("error", [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError])
def test_a_redis_lost_between_jobs_is_waited_for_in_place_as_in_rq(connection, caplog, error):
    queue = Queue("q", connection=connection)
    job = queue.enqueue(RETURNS, {})
    worker = JobWorker([queue], connection=connection)
    worker.heartbeat = mock.Mock(side_effect=[error("lost"), None, None, None])
    assert worker.work(burst=True) is True
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    messages = [record.getMessage() for record in caplog.records]
    assert any("could not connect to Redis instance: lost" in m for m in messages)


def test_the_project_s_workers_leave_work_when_redis_is_lost(connection):
    """_WorkerLoop starts a new one once Redis is back, registered afresh."""
    worker = JobWorker([Queue("q", connection=connection)], connection=connection)
    worker.waits_for_redis_in_place = False
    worker.heartbeat = mock.Mock(side_effect=redis.exceptions.ConnectionError("lost"))
    with pytest.raises(redis.exceptions.ConnectionError):
        worker.work(burst=True)


# RQ's per-job hooks a subclass may change, and a job for which RQ's code calls each.
RQ_HOOKS = {
    "execute_job": RETURNS,
    "perform_job": RETURNS,
    "prepare_job_execution": RETURNS,
    "handle_job_success": RETURNS,
    "handle_job_failure": FAILS,
    "get_heartbeat_ttl": RETURNS,
}


@pytest.mark.parametrize(("hook", "func"), RQ_HOOKS.items())
def test_a_subclass_s_rq_hooks_run_for_every_job(connection, hook, func):
    called = []

    def own_hook(self, job, *args, **kwargs):
        called.append(job.id)
        return getattr(JobWorker, hook)(self, job, *args, **kwargs)

    queue = Queue("q", connection=connection)
    jobs = [queue.enqueue(func, {}) for _ in range(2)]
    type("Own", (JobWorker,), {hook: own_hook})([queue], connection=connection).work(burst=True)
    assert list(dict.fromkeys(called)) == [job.id for job in jobs]
    assert statuses(jobs) == ["failed" if func == FAILS else "finished"] * 2


def test_a_hook_changed_on_the_worker_runs_for_every_job(connection):
    queue = Queue("q", connection=connection)
    job = queue.enqueue(RETURNS, {})
    worker = JobWorker([queue], connection=connection)
    worker.execute_job = mock.Mock()  # a job taken and never run
    worker.work(burst=True)
    assert worker.execute_job.call_args.args[0].id == job.id
    assert job.get_status(refresh=True) == JobStatus.QUEUED


def test_a_failed_job_is_logged_as_rq_logs_it(connection, caplog):
    queue = Queue("q", connection=connection)
    job = queue.enqueue(FAILS, {})
    JobWorker([queue], connection=connection).work(burst=True)
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.job_id == job.id and record.queue == "q" and record.func == FAILS
    assert "Traceback" in record.getMessage()
    assert "ValueError: this job fails" in record.getMessage()


def test_the_exception_handlers_stop_at_an_explicit_falsy_return_as_in_rq(connection):
    called = []
    handlers = [lambda *exc_info: called.append(1) or 0, lambda *exc_info: called.append(2)]
    queue = Queue("q", connection=connection)
    queue.enqueue(FAILS, {})
    JobWorker([queue], connection=connection, exception_handlers=handlers).work(burst=True)
    assert called == [1]


def test_at_info_a_job_is_logged_as_rq_logs_it(connection, caplog):
    queue = Queue("q", connection=connection)
    job = queue.enqueue(RETURNS, {})
    JobWorker([queue], connection=connection).work(burst=True, logging_level="INFO")
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.endswith(f"({job.id})") and "tests.worker_jobs.returns" in m for m in messages)
    assert any(m.startswith(f"Successfully completed {job.description}") for m in messages)
    assert any("Job OK" in m and job.id in m for m in messages)
    assert any(f"job {job.id} result is kept for 500 seconds" in m for m in messages)


# ------------------------------------------------------------------ signals


def test_work_puts_the_signal_handlers_back(connection):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    JobWorker([Queue("q", connection=connection)], connection=connection).work(burst=True)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_stop_request_ends_the_wait_of_a_suspended_worker(connection):
    worker = _ThreadJobWorker([Queue("q", connection=connection)], connection=connection)
    suspend(connection)  # `rq suspend`
    try:
        thread = threading.Thread(target=worker.work, daemon=True)
        thread.start()
        wait_until(lambda: worker.get_state() == WorkerStatus.SUSPENDED, what="suspended")
        worker.request_stop()
        thread.join(10)
        assert not thread.is_alive()
    finally:
        resume(connection)
    assert not rq_compat.stop_requested(worker)  # as RQ: a stop while idle sets no flag


def test_a_stop_signal_ends_an_idle_worker_s_wait_at_once_as_in_rq(connection):
    """RQ's handler raises StopRequested into an idle worker's wait (RQ's WorkerPool
    tests see its worker gone within 0.75 s of a `shutdown` command, which is a SIGINT).
    The wait here would last an hour: if the signal does not end it, a job queued later
    ends it, and is taken."""
    queue = Queue("q", connection=connection)
    worker = JobWorker([queue], connection=connection)
    worker.WAIT_SECONDS = 3600
    stopped = threading.Event()

    def blocked() -> bool:
        return any(client["cmd"] == "blmove" for client in connection.client_list())

    def signal_once_waiting() -> None:
        wait_until(blocked, what="the worker blocked in its wait")
        os.kill(os.getpid(), signal.SIGTERM)  # to the process: its main thread, blocked
        if not stopped.wait(30):
            queue.enqueue(RETURNS, {})

    thread = threading.Thread(target=signal_once_waiting, daemon=True)
    thread.start()
    try:
        assert worker.work() is False  # no job taken
    finally:
        stopped.set()
        thread.join()
    assert Worker.all(connection=connection) == []


def rq_worker(redis_url: str, queue: str) -> Script:
    """`rq worker -w queuing.job_queue.JobWorker` on `queue`; its log lines (INFO, on stdout)."""
    command = [RQ, "worker", "-w", "queuing.job_queue.JobWorker", "--url", redis_url, queue]
    return Script("rq worker", redis_url, command)


def log_until(worker: Script, words: str) -> list[str]:
    """The worker's log lines up to the first one that says `words` (after the time)."""
    lines = [worker.next_line()]
    while not lines[-1].endswith(words):
        lines.append(worker.next_line())
    return lines


def said_cold_shut_down(worker: Script) -> bool:
    return any(line.endswith("cold shut down") for line in worker.lines)


def stopped_cold(worker: Script) -> bool:
    """Whether the worker has said it stops cold (or has ended); if not, one more SIGTERM."""
    worker.lines_so_far()
    if worker.process.poll() is not None or said_cold_shut_down(worker):
        return True
    worker.terminate()
    return False


def started(job: Job) -> bool:
    return job.get_status(refresh=True) == JobStatus.STARTED


def test_rq_worker_finishes_the_job_in_hand_on_sigterm(redis_url, connection):
    job = Queue("q", connection=connection).enqueue(HELD, {})
    worker = rq_worker(redis_url, "q")
    try:
        wait_until(lambda: started(job), what="job started")
        worker.terminate()
        log_until(worker, "warm shut down requested")  # the job still in hand
        let_end(job)
        assert worker.wait() == 0, worker.stderr()
    finally:
        worker.close()
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert Worker.all(connection=connection) == []


def test_rq_worker_stops_at_once_on_a_second_signal(redis_url, connection):
    job = Queue("q", connection=connection).enqueue(HELD, {})  # never let end
    worker = rq_worker(redis_url, "q")
    try:
        wait_until(lambda: started(job), what="job started")
        worker.terminate()
        log_until(worker, "warm shut down requested")
        # RQ ignores a signal within a second of the first (the pool's echo of it): one
        # more each time the last was not heard as a cold stop.
        wait_until(lambda: stopped_cold(worker), timeout=15, every=0.2, what="a cold shut down")
        worker.wait()
    finally:
        worker.close()
    assert said_cold_shut_down(worker)
    # As RQ's SimpleWorker: the SystemExit of the cold stop fails the job it cuts short.
    assert job.get_status(refresh=True) == JobStatus.FAILED
