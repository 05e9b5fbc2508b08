"""rq_bookkeeping writes what RQ writes: the same jobs, queued and worked once through
job_queue and once through RQ's own enqueue and SimpleWorker, leave the same keys,
fields and values in Redis (times, worker names and execution ids aside)."""

from datetime import datetime, timedelta, timezone

import pytest
import redis
from rq import Queue, Retry, SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.utils import now, utcformat

from queuing.job_queue import (
    EVENTS_KEPT,
    IDS_KEY,
    JOB_TIMEOUT_SECONDS,
    ON_FAILURE,
    ON_SUCCESS,
    JobWorker,
    create_job,
    events_key,
)
from queuing.job_queue.bookkeeping import JobTemplate, enqueue, rq_date
from tests import bookkeeping_jobs
from tests.redis_state import snapshot

JOB_DATA = {"phoneNumber": "4153518743", "message": "This is the code 4321"}
WORKER_FIELDS_BY_NATURE = {
    b"pid",
    b"ip_address",
    b"hostname",
    b"birth",
    b"death",
    b"total_working_time",
}


def run_through_rq(
    connection: redis.Redis, func: str, job_id: str, job_options: dict, worker_options: dict
) -> str:
    """RQ's own way: enqueue, then a stock SimpleWorker in burst mode."""
    queue = Queue("compare", connection=connection)
    queue.enqueue(
        func,
        JOB_DATA,
        job_id=job_id,
        job_timeout=30,
        on_success=ON_SUCCESS,
        on_failure=ON_FAILURE,
        **job_options,
    )
    connection.xadd(events_key("compare"), {"job": job_id, "event": "created"}, maxlen=EVENTS_KEPT)
    worker = SimpleWorker([queue], connection=connection, **worker_options)
    worker.work(burst=True, logging_level="WARNING")
    return worker.name


def run_through_job_queue(
    connection: redis.Redis, func: str, job_options: dict, worker_options: dict
) -> tuple[str, str]:
    """job_queue's way: JobCreator's jobs (with `job_options` too), a JobWorker."""
    queue = Queue("compare", connection=connection)
    callbacks = {"on_success": ON_SUCCESS, "on_failure": ON_FAILURE}
    template = JobTemplate(queue, func, JOB_TIMEOUT_SECONDS, **callbacks, **job_options)
    job, stored = template.build(connection, JOB_DATA)
    enqueue(queue, [job], [stored], IDS_KEY, events_key(queue.name), EVENTS_KEPT)  # as JobCreator
    worker = JobWorker([queue], connection=connection, **worker_options)
    worker.work(burst=True, logging_level="WARNING")
    return job.id, worker.name


@pytest.fixture
def two_databases(redis_server):
    """Database 1 for job_queue's way, database 2 for RQ's."""
    ours = redis.Redis(port=redis_server.port, db=1)
    theirs = redis.Redis(port=redis_server.port, db=2)
    ours.flushdb()
    theirs.flushdb()
    yield ours, theirs
    ours.flushdb()
    theirs.flushdb()


@pytest.mark.parametrize(
    ("func", "job_options", "worker_options"),
    [
        ("tests.bookkeeping_jobs.returns_nothing", {}, {}),
        ("tests.bookkeeping_jobs.returns_a_value", {}, {}),
        ("tests.bookkeeping_jobs.raises", {}, {}),
        # RQ then records no failure: no failed registry entry, no result.
        ("tests.bookkeeping_jobs.raises", {}, {"disable_default_exception_handler": True}),
        # Kept for 0 seconds: deleted as it ends.
        ("tests.bookkeeping_jobs.returns_a_value", {"result_ttl": 0}, {}),
        ("tests.bookkeeping_jobs.raises", {"failure_ttl": 0}, {}),
        # Kept for a while, or for ever.
        ("tests.bookkeeping_jobs.returns_a_value", {"result_ttl": -1}, {}),
        ("tests.bookkeeping_jobs.raises", {"failure_ttl": 60}, {}),
    ],
)
def test_a_job_s_life_leaves_what_rq_leaves(two_databases, func, job_options, worker_options):
    ours, theirs = two_databases
    job_id, our_worker = run_through_job_queue(ours, func, job_options, worker_options)
    ours_while_running = bookkeeping_jobs.states.pop()
    theirs.set("job_queue:ids", job_id)  # the counter only job_queue keeps
    their_worker = run_through_rq(theirs, func, job_id, job_options, worker_options)
    theirs_while_running = bookkeeping_jobs.states.pop()

    assert without_worker_facts(ours_while_running) == without_worker_facts(theirs_while_running)
    our_state, their_state = snapshot(ours, our_worker), snapshot(theirs, their_worker)
    assert without_worker_facts(our_state) == without_worker_facts(their_state)
    if job_options.get("result_ttl", job_options.get("failure_ttl")) != 0:
        assert Job.fetch(job_id, connection=ours).get_status() in ("finished", "failed")


@pytest.mark.parametrize(
    ("func", "retry"),
    [
        # Queued again at once: both failed tries, then the last one, failed.
        ("tests.bookkeeping_jobs.raises", Retry(max=2)),
        # Succeeds on its second try.
        ("tests.bookkeeping_jobs.raises_on_first_try", Retry(max=2)),
        # Queued again at the front of its queue.
        ("tests.bookkeeping_jobs.raises", Retry(max=2, enqueue_at_front=True)),
        # Scheduled 5 s later: each try in a burst of its own, moved on by RQ's scheduler.
        ("tests.bookkeeping_jobs.raises", Retry(max=2, interval=[5])),
        ("tests.bookkeeping_jobs.raises_on_first_try", Retry(max=2, interval=[5])),
    ],
)
def test_a_retried_job_s_tries_leave_what_rq_leaves(two_databases, monkeypatch, func, retry):
    """Each try of a job with retries (RQ's Retry, job_queue's `attempts`): the state
    while it runs and after each burst, the events stream with its `failed attempt`s
    included, key by key. JobWorker's step writes them: RQ's Job.retry never runs."""
    ours, theirs = two_databases
    job_options = {"retry": retry}
    retried_by_rq = []
    rq_retry = Job.retry
    monkeypatch.setattr(Job, "retry", lambda job, *args: retried_by_rq.append(job.id))
    job_id, our_worker = run_through_job_queue(ours, func, job_options, {})
    assert retried_by_rq == []
    monkeypatch.setattr(Job, "retry", rq_retry)
    theirs.set("job_queue:ids", job_id)
    their_worker = run_through_rq(theirs, func, job_id, job_options, {})
    for _ in range(3):  # a scheduled retry: the next try in the next burst
        ours_running = bookkeeping_jobs.states[: len(bookkeeping_jobs.states) // 2]
        theirs_running = bookkeeping_jobs.states[len(bookkeeping_jobs.states) // 2 :]
        bookkeeping_jobs.states.clear()
        assert len(ours_running) == len(theirs_running)
        for our_state, their_state in zip(ours_running, theirs_running, strict=True):
            assert without_worker_facts(our_state) == without_worker_facts(their_state)
        our_state, their_state = snapshot(ours, our_worker), snapshot(theirs, their_worker)
        assert without_worker_facts(our_state) == without_worker_facts(their_state)
        status = Job.fetch(job_id, connection=ours).get_status()
        if status != "scheduled":
            break
        monkeypatch.setattr(Job, "retry", lambda job, *args: retried_by_rq.append(job.id))
        our_worker = work_the_due_retry(ours, JobWorker)
        assert retried_by_rq == []
        monkeypatch.setattr(Job, "retry", rq_retry)
        their_worker = work_the_due_retry(theirs, SimpleWorker)
    assert status in ("finished", "failed")


@pytest.mark.parametrize("worker_class", [JobWorker, SimpleWorker])
def test_a_job_stopped_on_request_is_not_retried(redis_url, worker_class):
    """RQ marks a job stopped by the stop-job command stopped, and never retries it;
    so does JobWorker, though the job has retries left."""
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("compare", connection=connection)
    func = "tests.bookkeeping_jobs.stopped_on_request"
    job = queue.enqueue(func, JOB_DATA, retry=Retry(max=2), on_failure=ON_FAILURE)
    worker = worker_class([queue], connection=connection)
    bookkeeping_jobs.stopping_worker = worker
    worker.work(burst=True, logging_level="WARNING")

    job.refresh()
    assert (job.get_status(), job.retries_left) == ("stopped", 2)
    assert queue.job_ids == []
    assert queue.failed_job_registry.get_job_ids() == [job.id]


def work_the_due_retry(connection: redis.Redis, worker_class: type[SimpleWorker]) -> str:
    """The scheduled retry made due now and queued by RQ's scheduler, then worked."""
    queue = Queue("compare", connection=connection)
    registry = ScheduledJobRegistry(queue=queue)
    for job_id in registry.get_job_ids():
        connection.zadd(registry.key, {job_id: 1})
    scheduler = RQScheduler([queue], connection=connection)
    scheduler.prepare_registries([queue.name])  # as it does once it holds the queue's lock
    scheduler.enqueue_scheduled_jobs()
    worker = worker_class([queue], connection=connection)
    worker.work(burst=True, logging_level="WARNING")
    return worker.name


def without_worker_facts(state: dict) -> dict:
    """The worker's own facts (its pid, address, times) differ by nature; so does Kue's
    `start` event, which JobWorker sends and RQ's worker, with no hook for it, does not."""
    state = dict(state)
    for key, (kind, expires, entries) in state.items():
        # The worker's, and an earlier burst's worker (a retry's tries: one a burst).
        if key.startswith(b"rq:worker:") and kind == "hash":
            kept = [pair for pair in entries if pair[0] not in WORKER_FIELDS_BY_NATURE]
            state[key] = (kind, expires, kept)
        if key.startswith(b"job_queue:events:"):
            entries = [entry for entry in entries if (b"event", b"start") not in entry]
            state[key] = (kind, expires, entries)
    return state


def test_a_job_the_fast_path_does_not_cover_runs_through_rq(redis_url):
    """Dependencies: JobWorker leaves them to RQ's own code (a retried job's tries are
    the step's, test_a_retried_job_s_tries_leave_what_rq_leaves)."""
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("compare", connection=connection)
    retried = queue.enqueue("tests.bookkeeping_jobs.raises", JOB_DATA, retry=Retry(max=2))
    first = queue.enqueue("tests.bookkeeping_jobs.returns_a_value", JOB_DATA)
    then = queue.enqueue("tests.bookkeeping_jobs.returns_nothing", JOB_DATA, depends_on=first)
    JobWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")

    retried.refresh()
    assert (retried.get_status(), retried.retries_left) == ("failed", 0)  # tried 3 times
    assert first.get_status(refresh=True) == "finished"
    assert first.return_value() == {"sent to": "4153518743"}
    assert then.get_status(refresh=True) == "finished"
    bookkeeping_jobs.states.clear()


def test_a_job_runs_the_function_its_module_holds_as_it_runs(redis_url, monkeypatch):
    """A worker keeps no function of its jobs: one replaced (a test's monkeypatch, a
    reload) is the one the next job runs, as with RQ."""
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("compare", connection=connection)
    jobs = [create_job(queue, "tests.bookkeeping_jobs.returns_a_value", JOB_DATA) for _ in range(2)]
    JobWorker([queue], connection=connection).work(burst=True, max_jobs=1)
    monkeypatch.setattr(bookkeeping_jobs, "returns_a_value", lambda data: "replaced")
    JobWorker([queue], connection=connection).work(burst=True)

    first, second = (Job.fetch(job.id, connection=connection) for job in jobs)
    assert first.return_value() == {"sent to": "4153518743"}
    assert second.return_value() == "replaced"
    bookkeeping_jobs.states.clear()


@pytest.mark.parametrize(
    "at",
    [
        now(),
        datetime(2026, 1, 2, tzinfo=timezone.utc),  # no microseconds
        datetime(2026, 11, 30, 9, 1, 54, 612841),  # naive
        datetime(2026, 11, 30, 9, 1, 54, 5, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_dates_are_written_as_rq_writes_them(at):
    assert rq_date(at) == utcformat(at)
