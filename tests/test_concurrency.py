"""A worker of several jobs at a time in one process (ConcurrentJobWorker): its jobs run
together, plain ones on threads and `async def` ones on an event loop; each is started,
timed out and ended as a JobWorker's, under one RQ worker."""

import threading

import pytest
from rq import Queue, Worker
from rq.job import Job, JobStatus

from harness.waiting import wait_until
from queuing.job_queue import JobCreator
from queuing.job_queue.concurrency import ConcurrentJobWorker

JOBS = "tests.concurrent_jobs"


def worker_of(queue: Queue, concurrency: int) -> ConcurrentJobWorker:
    return ConcurrentJobWorker([queue], connection=queue.connection, concurrency=concurrency)


def runs_of(jobs: list[Job]) -> list[dict]:
    for job in jobs:
        job.refresh()
    assert [job.get_status() for job in jobs] == [JobStatus.FINISHED] * len(jobs)
    return [job.return_value() for job in jobs]


def no_job_thread_left() -> None:
    """Wait for the job threads to end, a stuck one once its call has returned: one
    that outlived its test would raise its pending exception in another test's time
    (and CPython 3.11's traceback module parses source with `ast`, which is not safe in
    two threads at once)."""
    wait_until(lambda: not [t for t in threading.enumerate() if t.name == "job"], 15)


STUCK = {"seconds": 3}  # past the job's timeout, its stop, and the give-up a second later


def overlapped(runs: list[dict]) -> bool:
    """Whether every run began before any ended: all of them at once."""
    return max(run["start"] for run in runs) < min(run["end"] for run in runs)


@pytest.mark.parametrize("function", ["sleeps", "sleeps_async"])
def test_n_jobs_run_at_once_in_one_worker(connection, function):
    queue = Queue("q", connection=connection)
    jobs = [queue.enqueue(f"{JOBS}.{function}", {"seconds": 0.5}) for _ in range(4)]
    worker = worker_of(queue, 4)
    assert worker.work(burst=True) is True
    runs = runs_of(jobs)
    assert overlapped(runs)
    assert {job.worker_name for job in jobs} == {worker.name}
    if function == "sleeps":
        assert len({run["thread"] for run in runs}) == 4
    else:  # get_current_job() names each task's own job
        assert [run["job"] for run in runs] == [job.id for job in jobs]
    assert connection.hmget(worker.key, "successful_job_count", "state") == [b"4", b"idle"]


def test_no_more_than_n_at_once(connection):
    queue = Queue("q", connection=connection)
    jobs = [queue.enqueue(f"{JOBS}.sleeps", {"seconds": 0.3}) for _ in range(6)]
    worker_of(queue, 3).work(burst=True)
    runs = sorted(runs_of(jobs), key=lambda run: run["start"])
    assert overlapped(runs[:3]) and overlapped(runs[3:])
    assert min(run["start"] for run in runs[3:]) >= min(run["end"] for run in runs[:3])


def test_rq_sees_one_busy_worker_with_each_job_started(connection):
    queue = Queue("q", connection=connection)
    jobs = [queue.enqueue("tests.held_jobs.waits_for_the_word", {}) for _ in range(3)]
    worker = worker_of(queue, 3)
    thread = threading.Thread(target=worker.work, kwargs={"burst": True})
    thread.start()
    try:
        wait_until(lambda: queue.started_job_registry.count == 3, what="3 jobs started")
        (seen,) = Worker.all(queue=queue)
        assert seen.get_state() == "busy"
        assert connection.scard(f"{worker.key}:executions") == 3
        assert sorted(queue.started_job_registry.get_job_ids()) == sorted(j.id for j in jobs)
        # one ends: the worker is still busy with the two others
        connection.rpush(f"test:may_end:{jobs[0].id}", "end")
        wait_until(lambda: queue.started_job_registry.count == 2, what="one ended")
        assert Worker.find_by_key(worker.key, connection=connection).get_state() == "busy"
    finally:
        for job in jobs:
            connection.rpush(f"test:may_end:{job.id}", "end")
        thread.join(30)
    assert connection.scard(f"{worker.key}:executions") == 0
    assert [job.get_status(refresh=True) for job in jobs] == [JobStatus.FINISHED] * 3


@pytest.mark.parametrize("function", ["hangs", "hangs_async", "stuck_in_one_call"])
def test_a_job_past_its_timeout_fails_alone(connection, function):
    queue = Queue("q", connection=connection)
    hung = queue.enqueue(f"{JOBS}.{function}", STUCK, job_timeout=1)
    others = [queue.enqueue(f"{JOBS}.sleeps", {"seconds": 0.2}) for _ in range(3)]
    worker_of(queue, 2).work(burst=True)
    no_job_thread_left()
    assert hung.get_status(refresh=True) == JobStatus.FAILED
    error = hung.latest_result().exc_string.strip().splitlines()[-1]
    assert error.endswith("Task exceeded maximum timeout value (1 seconds)")
    runs_of(others)  # all finished


def test_failed_and_finished_jobs_are_counted_apart(connection):
    creator = JobCreator(Queue("q", connection=connection))
    heard: list[tuple] = []
    creator.handlers["failed"] = lambda job_id, error: heard.append(("failed", job_id, error))
    creator.handlers["completed"] = lambda job_id: heard.append(("completed", job_id))
    fails = creator.create(f"{JOBS}.fails", {})
    finishes = creator.create(f"{JOBS}.sleeps_async", {"seconds": 0.1})
    worker = worker_of(creator.queue, 2)
    worker.work(burst=True)
    creator.wait()
    assert sorted(heard) == [("completed", finishes.id), ("failed", fails.id, "this job fails")]
    assert connection.hmget(worker.key, "successful_job_count", "failed_job_count") == [b"1", b"1"]


def test_a_stop_finishes_the_jobs_in_hand_and_takes_no_more(connection):
    queue = Queue("q", connection=connection)
    jobs = [queue.enqueue(f"{JOBS}.sleeps", {"seconds": 0.5}) for _ in range(4)]
    worker = worker_of(queue, 2)
    thread = threading.Thread(target=worker.work)
    thread.start()
    wait_until(lambda: queue.started_job_registry.count == 2, what="2 jobs started")
    worker.request_stop()
    thread.join(30)
    assert not thread.is_alive()
    statuses = [job.get_status(refresh=True) for job in jobs]
    assert statuses == [JobStatus.FINISHED] * 2 + [JobStatus.QUEUED] * 2
    assert Worker.all(queue=queue) == []


@pytest.mark.parametrize("function", ["hangs", "hangs_async", "stuck_in_one_call"])
def test_a_shutdown_timeout_fails_the_jobs_still_running(connection, function):
    queue = Queue("q", connection=connection)
    hung = [queue.enqueue(f"{JOBS}.{function}", STUCK) for _ in range(2)]
    worker = worker_of(queue, 2)
    worker.shutdown_timeout = 0.5
    thread = threading.Thread(target=worker.work)
    thread.start()
    wait_until(lambda: queue.started_job_registry.count == 2, what="2 jobs started")
    worker.request_stop()
    thread.join(30)
    no_job_thread_left()
    for job in hung:
        assert job.get_status(refresh=True) == JobStatus.FAILED
        error = job.latest_result().exc_string.strip().splitlines()[-1]
        assert error.endswith("Shut down before the job ended")


def test_jobs_of_several_queues_in_their_order(connection):
    high, low = Queue("high", connection=connection), Queue("low", connection=connection)
    lows = [low.enqueue(f"{JOBS}.sleeps", {"seconds": 0.2}) for _ in range(2)]
    highs = [high.enqueue(f"{JOBS}.sleeps", {"seconds": 0.2}) for _ in range(2)]
    ConcurrentJobWorker([high, low], connection=connection, concurrency=2).work(burst=True)
    high_runs, low_runs = runs_of(highs), runs_of(lows)
    assert max(run["start"] for run in high_runs) < min(run["start"] for run in low_runs)


def test_a_thread_stuck_in_a_call_is_replaced(connection):
    """Two places, one job stuck in a call past its timeout: the jobs after it still run
    two at a time, on a new thread and the free one."""
    queue = Queue("q", connection=connection)
    stuck = queue.enqueue(f"{JOBS}.stuck_in_one_call", {"seconds": 5}, job_timeout=1)
    others = [queue.enqueue(f"{JOBS}.sleeps", {"seconds": 2}) for _ in range(3)]
    worker_of(queue, 2).work(burst=True)
    no_job_thread_left()
    assert stuck.get_status(refresh=True) == JobStatus.FAILED
    runs = sorted(runs_of(others), key=lambda run: run["start"])
    assert overlapped(runs[1:])  # the two last together, on two threads
    assert len({run["thread"] for run in runs}) >= 2
