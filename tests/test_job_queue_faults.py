"""job_queue under faults, in one process against a real Redis: a job ends exactly once,
and its end is written even when Redis drops right after the job ran."""

import contextlib
import threading

import pytest
import redis
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.suspension import resume, suspend
from rq.timeouts import TimerDeathPenalty

from harness.waiting import wait_until
from queuing.job_queue import (
    JobWorker,
    QueueListener,
    WorkerThread,
    create_job,
    events_key,
    report_progress,
)
from queuing.job_queue.processes import _ThreadJobWorker
from queuing.job_queue.step import JobSteps
from tests import held_jobs

HELD_JOB = "tests.held_jobs.waits_for_the_test"
QUICK_JOB = "tests.worker_jobs.returns"
QUEUE = "faults"


@pytest.fixture
def held():
    """held_jobs, ready for a job held in this process."""
    held_jobs.reset()
    yield held_jobs
    held_jobs.may_end.set()  # never leave a job waiting


def ends(connection: redis.Redis, queue_name: str = QUEUE) -> list[tuple[str, str]]:
    """The (job, event) of every end in the queue's event stream."""
    entries = connection.xrange(events_key(queue_name))
    return [
        (fields[b"job"].decode(), fields[b"event"].decode())
        for _, fields in entries
        if fields[b"event"] in (b"completed", b"failed")
    ]


def status(connection: redis.Redis, job_id: str) -> JobStatus:
    return Job.fetch(job_id, connection=connection).get_status()


def test_report_progress_refuses_a_total_of_zero():
    with pytest.raises(ValueError, match="total must be above 0, not 0"):
        report_progress(5, 0)


def test_a_finished_job_is_written_finished_while_workers_are_suspended(
    connection, held, monkeypatch
):
    # Housekeeping (where a suspension holds the worker) comes after every job.
    monkeypatch.setattr(JobWorker, "_housekeeping_due", lambda self: True)
    queue = Queue(QUEUE, connection=connection)
    job = create_job(queue, HELD_JOB, {})
    worker = WorkerThread([QUEUE], connection)
    try:
        assert held.running.wait(10)
        suspend(connection)  # `rq suspend`
        held.may_end.set()
        wait_until(lambda: status(connection, job.id) == JobStatus.FINISHED)
        assert ends(connection) == [(job.id, "completed")]
    finally:
        resume(connection)
        worker.stop()


def test_an_outcome_is_written_once_redis_is_back(make_redis_server, held):
    server = make_redis_server(persist=True).start()
    with redis.Redis.from_url(server.url) as connection:
        job = create_job(Queue(QUEUE, connection=connection), HELD_JOB, {})
        worker = WorkerThread([QUEUE], connection)
        try:
            assert held.running.wait(10)
            server.stop()  # Redis goes away while the job runs
            held.may_end.set()
            server.start()
            wait_until(lambda: status(connection, job.id) == JobStatus.FINISHED)
            assert ends(connection) == [(job.id, "completed")]
        finally:
            worker.stop()


def test_the_outcomes_of_n_jobs_in_hand_are_written_once_redis_is_back(make_redis_server, held):
    server = make_redis_server(persist=True).start()
    with redis.Redis.from_url(server.url) as connection:
        queue = Queue(QUEUE, connection=connection)
        jobs = [create_job(queue, HELD_JOB, {}) for _ in range(3)]
        worker = WorkerThread([QUEUE], connection, jobs_at_a_time=3)
        try:
            wait_until(lambda: queue.started_job_registry.count == 3, what="3 jobs started")
            server.stop()  # Redis goes away while the three run
            held.may_end.set()
            server.start()
            done = lambda: [status(connection, job.id) for job in jobs]  # noqa: E731
            wait_until(lambda: done() == [JobStatus.FINISHED] * 3, what="3 jobs finished")
            assert sorted(ends(connection)) == sorted((job.id, "completed") for job in jobs)
        finally:
            worker.stop()


def test_n_jobs_in_hand_end_while_workers_are_suspended(connection, held):
    queue = Queue(QUEUE, connection=connection)
    jobs = [create_job(queue, HELD_JOB, {}) for _ in range(3)]
    later = create_job(queue, HELD_JOB, {})
    worker = WorkerThread([QUEUE], connection, jobs_at_a_time=3)
    try:
        wait_until(lambda: queue.started_job_registry.count == 3, what="3 jobs started")
        suspend(connection)  # `rq suspend`: the jobs in hand end, no other is taken
        # seen at its next housekeeping (about a second), which nothing in Redis shows
        wait_until(lambda: worker._loop.worker._suspended, what="the suspension seen")
        held.may_end.set()
        done = lambda: [status(connection, job.id) for job in jobs]  # noqa: E731
        wait_until(lambda: done() == [JobStatus.FINISHED] * 3, what="3 jobs finished")
        assert sorted(ends(connection)) == sorted((job.id, "completed") for job in jobs)
        (seen,) = Worker.all(queue=queue)
        state = lambda: connection.hget(seen.key, "state")  # noqa: E731
        wait_until(lambda: state() == b"suspended", what="its worker suspended")
        assert status(connection, later.id) == JobStatus.QUEUED
    finally:
        resume(connection)
        worker.stop()


def test_a_deleted_job_at_the_head_of_the_queue_is_skipped(connection):
    queue = Queue(QUEUE, connection=connection)
    gone, kept = (create_job(queue, QUICK_JOB, {}) for _ in range(2))
    connection.delete(gone.key)
    _ThreadJobWorker([queue], connection=connection).work(burst=True)
    assert status(connection, kept.id) == JobStatus.FINISHED
    assert queue.count == 0


def take(connection: redis.Redis, queue: Queue, worker_name: str = "w") -> Job:
    """Take the next job as a worker does, and leave it started (its worker 'died')."""
    worker = _ThreadJobWorker([queue], connection=connection, name=worker_name)
    steps = JobSteps(connection, worker.name, worker.key, worker.step_settings())
    _, claimed = steps.step(None, queue)
    steps.close()
    return claimed.job


def clean_up_abandoned(connection: redis.Redis) -> None:
    """RQ's cleanup, as if the abandoned job's heartbeat had long expired."""
    registry = StartedJobRegistry(
        QUEUE, connection=connection, death_penalty_class=TimerDeathPenalty
    )
    registry.cleanup(timestamp=2**40)


def test_an_abandoned_job_fails_once_however_often_it_is_cleaned_up(connection):
    queue = Queue(QUEUE, connection=connection)
    job = create_job(queue, QUICK_JOB, {})
    take(connection, queue)
    cleaners = [threading.Thread(target=clean_up_abandoned, args=(connection,)) for _ in range(4)]
    for cleaner in cleaners:
        cleaner.start()
    for cleaner in cleaners:
        cleaner.join()
    clean_up_abandoned(connection)
    assert ends(connection) == [(job.id, "failed")]
    assert status(connection, job.id) == JobStatus.FAILED
    assert job.id in FailedJobRegistry(QUEUE, connection=connection)


def test_a_late_outcome_of_a_job_already_failed_as_abandoned_is_dropped(connection):
    queue = Queue(QUEUE, connection=connection)
    job = create_job(queue, QUICK_JOB, {})
    worker = _ThreadJobWorker([queue], connection=connection, name="late")
    steps = JobSteps(connection, worker.name, worker.key, worker.step_settings())
    _, claimed = steps.step(None, queue)
    clean_up_abandoned(connection)  # its worker was cut off too long
    outcome = worker._run(claimed, queue)  # then it comes back and writes its outcome
    steps.step(outcome, None)
    steps.close()
    assert ends(connection) == [(job.id, "failed")]
    assert status(connection, job.id) == JobStatus.FAILED


def test_an_outcome_of_another_execution_of_the_job_is_dropped(connection):
    """An outcome written again after a lost connection (JobWorker._write_again) ends
    the job only in the execution it came from: not a later one of the same worker."""
    queue = Queue(QUEUE, connection=connection)
    job = create_job(queue, QUICK_JOB, {})
    worker = _ThreadJobWorker([queue], connection=connection, name="again")
    steps = JobSteps(connection, worker.name, worker.key, worker.step_settings())
    _, claimed = steps.step(None, queue)
    outcome = worker._run(claimed, queue)
    outcome.execution_id = "an-earlier-one"
    steps.step(outcome, None)
    assert status(connection, job.id) == JobStatus.STARTED
    assert ends(connection) == []
    outcome.execution_id = claimed.execution_id
    steps.step(outcome, None)
    steps.step(outcome, None)  # and again: dropped
    steps.close()
    assert status(connection, job.id) == JobStatus.FINISHED
    assert ends(connection) == [(job.id, "completed")]


def test_a_listener_goes_on_after_a_handler_raises(connection, capsys):
    queue = Queue(QUEUE, connection=connection)
    heard = []

    def completed(job_id: str) -> None:
        heard.append(job_id)
        if len(heard) == 1:
            raise RuntimeError("a handler's bug")

    listener = QueueListener(queue, "app", completed=completed)
    listener.listen_in_background()
    try:
        jobs = [create_job(queue, QUICK_JOB, {}) for _ in range(2)]
        _ThreadJobWorker([queue], connection=connection).work(burst=True)
        wait_until(lambda: len(heard) == 2)
        assert heard == [job.id for job in jobs]
    finally:
        listener.close()


def group_exists(connection: redis.Redis) -> bool:
    with contextlib.suppress(redis.ResponseError):  # no stream yet
        return connection.xinfo_groups(events_key(QUEUE)) != []
    return False


def hears_the_next_end(connection: redis.Redis, queue: Queue, heard: list[str]) -> None:
    """Once the listener has joined its group again, a new job's end reaches it."""
    wait_until(lambda: group_exists(connection))
    job = create_job(queue, QUICK_JOB, {})
    _ThreadJobWorker([queue], connection=connection).work(burst=True)
    wait_until(lambda: heard == [job.id])


def test_a_listener_goes_on_after_an_error_reply(connection):
    queue = Queue(QUEUE, connection=connection)
    heard = []
    listener = QueueListener(queue, "app", completed=heard.append)
    listener.listen_in_background()
    try:
        wait_until(lambda: any(c["cmd"] == "xreadgroup" for c in connection.client_list()))
        # The blocked read gets an error reply (UNBLOCKED the stream key no longer
        # exists); the next one, NOGROUP: the listener joins again.
        connection.delete(events_key(QUEUE))
        hears_the_next_end(connection, queue, heard)
    finally:
        listener.close()


def test_a_listener_hears_again_after_redis_lost_its_data(make_redis_server):
    server = make_redis_server(persist=False).start()
    with redis.Redis.from_url(server.url) as connection:
        queue = Queue(QUEUE, connection=connection)
        heard = []
        listener = QueueListener(queue, "app", completed=heard.append)
        listener.listen_in_background()
        try:
            server.kill()
            server.start()  # empty: the events and the listeners' group are gone
            hears_the_next_end(connection, queue, heard)
        finally:
            listener.close()


def test_listeners_of_a_group_share_the_ends_and_take_over_a_dead_one_s(connection):
    queue = Queue(QUEUE, connection=connection)
    QueueListener.start_group(connection, QUEUE, "app")
    jobs = [create_job(queue, QUICK_JOB, {}) for _ in range(3)]
    _ThreadJobWorker([queue], connection=connection).work(burst=True)
    # A listener reads the three ends, then its process dies before handling them.
    connection.xreadgroup("app", "dead", {events_key(QUEUE): ">"})
    heard = []
    alive = QueueListener(queue, "app", completed=heard.append)
    alive.CLAIM_AFTER_SECONDS = 0
    alive.listen_in_background()
    try:
        wait_until(lambda: len(heard) == 3)
        assert heard == [job.id for job in jobs]
    finally:
        alive.close()
