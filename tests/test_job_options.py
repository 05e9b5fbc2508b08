"""Kue's job options on a real Redis: priority, delay, attempts with backoff, TTL,
removal, results, logs, progress data, queue-level events, pause, shutdown."""

import itertools
from datetime import timedelta

import pytest
from rq import Queue, SimpleWorker
from rq.job import Job

from harness.waiting import wait_until
from queuing.job_queue import (
    BadJobOption,
    JobCreator,
    JobWorker,
    QueueEvents,
    WorkerThread,
    is_paused,
    job_options,
    pause_queue,
    promote_job,
    resume_queue,
)
from queuing.job_queue.lookup import remove_job
from tests import held_jobs
from tests.option_jobs import RUNS_KEY, tries_key

RECORDS = "tests.option_jobs.records_its_run"
FAILS_UNTIL = "tests.option_jobs.fails_until"


@pytest.fixture
def queue(connection):
    return Queue("options", connection=connection)


class Heard:
    """A creator's handlers, each event kept as a tuple in the order heard."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def handlers(self) -> dict:
        names = ("created", "started", "promoted", "removed")
        handlers = {name: self._keeper(name) for name in names}
        handlers["progress"] = lambda job_id, percent, data: self._keep(
            "progress", job_id, percent, data
        )
        handlers["failed_attempt"] = lambda job_id, error, attempt: self._keep(
            "failed_attempt", job_id, error, attempt
        )
        handlers["failed"] = lambda job_id, error: self._keep("failed", job_id, error)
        handlers["completed"] = lambda job_id, result: self._keep("completed", job_id, result)
        return handlers

    def _keeper(self, name: str):
        return lambda job_id: self._keep(name, job_id)

    def _keep(self, *event) -> None:
        self.events.append(event)

    def of(self, job_id: str) -> list[tuple]:
        return [event for event in self.events if event[1] == job_id]


def completed_names(heard: Heard, job_id: str) -> list[str]:
    """The names in the results of a records_its_run job's `completed` events."""
    return [event[2]["name"] for event in heard.of(job_id) if event[0] == "completed"]


def work_until_empty(queue: Queue) -> None:
    JobWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")


def runs(connection) -> list[str]:
    return [name.decode() for name in connection.lrange(RUNS_KEY, 0, -1)]


# Refused before anything is queued.


def nothing_stored(connection) -> bool:
    """No job, not even an id taken (another test's app may still write keys of its own)."""
    return (
        connection.keys("rq:*") == []
        and connection.keys("*options*") == []
        and (connection.get("job_queue:ids") is None)
    )


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"delay": -1}, "delay"),
        ({"delay": "soon"}, "delay"),
        ({"attempts": 0}, "attempts"),
        ({"attempts": 2.5}, "attempts"),
        ({"attempts": 3, "backoff": {"type": "linear"}}, "backoff"),
        ({"attempts": 3, "backoff": "yes"}, "backoff"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": -5}, "ttl"),
        ({"remove_on_complete": -1}, "remove_on_complete"),
        ({"remove_on_complete": {"keep": 3}}, "remove_on_complete"),
        ({"remove_on_fail": {"count": -1}}, "remove_on_fail"),
    ],
)
def test_a_bad_option_is_refused_and_nothing_is_queued(queue, connection, options, named):
    with pytest.raises(BadJobOption) as refused:
        JobCreator(queue).create(RECORDS, {"name": "a"}, **options)
    assert refused.value.option == named
    assert str(refused.value).startswith(f"{named}: ")
    assert nothing_stored(connection)


def test_data_that_cannot_be_stored_is_refused(queue, connection):
    with pytest.raises(BadJobOption, match=r"^data: cannot be stored"):
        JobCreator(queue).create(RECORDS, {"name": "a", "callback": lambda: None}, attempts=2)
    assert nothing_stored(connection)


def test_an_unknown_option_or_event_is_a_type_error(queue):
    with pytest.raises(TypeError):
        JobCreator(queue).create(RECORDS, {"name": "a"}, priorty="high")
    with pytest.raises(TypeError, match="no event complete"):
        JobCreator(queue, complete=print)


def test_backoff_waits_are_kues():
    assert job_options(attempts=3).waits == (0.0, 0.0)
    assert job_options(attempts=3, delay=4, backoff=True).waits == (4.0, 4.0)
    assert job_options(attempts=3, backoff={"delay": 2}).waits == (2.0, 2.0)
    exponential = {"type": "exponential", "delay": 2}
    assert job_options(attempts=4, backoff=exponential).waits == (1, 3, 7)  # d/2 * (2^k - 1)
    capped = {"type": "exponential", "delay": 2, "max_delay": 4}
    assert job_options(attempts=4, backoff=capped).waits == (1, 3, 3)
    assert job_options(attempts=4, backoff=lambda made, last: last + made).waits == (1, 3, 6)
    assert job_options(delay=timedelta(minutes=1)).delay == 60


# Priority.


def test_a_worker_takes_higher_priorities_first_and_one_priority_in_order(queue, connection):
    creator = JobCreator(queue)
    for name, priority in [
        ("low", "low"),
        ("normal 1", "normal"),
        ("critical", "critical"),
        ("normal 2", 0),
        ("high 1", "high"),
        ("between", -12),
        ("high 2", -10),
    ]:
        creator.create(RECORDS, {"name": name}, priority=priority)
    work_until_empty(queue)
    assert runs(connection) == [
        "critical",
        "between",
        "high 1",
        "high 2",
        "normal 1",
        "normal 2",
        "low",
    ]


def test_a_stock_rq_worker_given_the_levels_in_order_works_them_so(queue, connection):
    creator = JobCreator(queue)
    creator.create(RECORDS, {"name": "low"}, priority="low")
    creator.create(RECORDS, {"name": "normal"})
    creator.create(RECORDS, {"name": "critical"}, priority="critical")
    levels = ["options:critical", "options", "options:low"]
    SimpleWorker(levels, connection=connection).work(burst=True, logging_level="WARNING")
    assert runs(connection) == ["critical", "normal", "low"]


def test_a_job_of_a_priority_level_tells_its_creator(queue):
    heard = Heard()
    creator = JobCreator(queue, **heard.handlers())
    job = creator.create(RECORDS, {"name": "urgent"}, priority="critical")
    assert job.origin == "options:critical"
    work_until_empty(queue)
    creator.wait()
    assert [event[0] for event in heard.of(job.id)] == ["created", "started", "completed"]


# Delay.


def test_a_delayed_job_waits_in_rq_s_scheduled_registry_then_runs_no_earlier(queue, connection):
    heard = Heard()
    creator = JobCreator(queue, **heard.handlers())
    job = creator.create(RECORDS, {"name": "later"}, delay=1)
    assert job.get_status(refresh=True) == "scheduled"
    assert queue.scheduled_job_registry.get_job_ids() == [job.id]
    due = queue.scheduled_job_registry.get_scheduled_time(job).timestamp()
    worker = WorkerThread(["options"], connection)
    try:
        creator.wait()
    finally:
        worker.stop()
    created_at = Job.fetch(job.id, connection=connection).created_at.timestamp()
    started = Job.fetch(job.id, connection=connection).return_value()["started"]
    # Due a second after the call to create (its created_at is a little later), and never
    # run early: the start from Redis's clock, the due time from the creator's (one machine).
    assert due == pytest.approx(created_at + 1, abs=0.01)
    assert started >= due
    assert [event[0] for event in heard.of(job.id)] == [
        "created",
        "promoted",
        "started",
        "completed",
    ]


def test_a_delayed_job_can_be_promoted_now(queue, connection):
    heard = Heard()
    creator = JobCreator(queue, **heard.handlers())
    job = creator.create(RECORDS, {"name": "tomorrow"}, delay=timedelta(days=1))
    assert promote_job(job) is True
    assert promote_job(job) is False  # once
    work_until_empty(queue)
    creator.wait()
    assert runs(connection) == ["tomorrow"]
    assert [event[0] for event in heard.of(job.id)] == [
        "created",
        "promoted",
        "started",
        "completed",
    ]


# Attempts and backoff.


def tries_of(connection, job_id: str) -> list[float]:
    return [float(at) for at in connection.lrange(tries_key(job_id), 0, -1)]


def test_each_failed_try_but_the_last_is_a_failed_attempt(queue, connection):
    heard = Heard()
    creator = JobCreator(queue, **heard.handlers())
    job = creator.create(FAILS_UNTIL, {}, attempts=3)
    worker = WorkerThread(["options"], connection)
    try:
        creator.wait()
    finally:
        worker.stop()
    assert [event for event in heard.of(job.id) if "fail" in event[0]] == [
        ("failed_attempt", job.id, "try 1 failed", 1),
        ("failed_attempt", job.id, "try 2 failed", 2),
        ("failed", job.id, "try 3 failed"),
    ]
    assert len(tries_of(connection, job.id)) == 3
    assert Job.fetch(job.id, connection=connection).get_status() == "failed"


def test_a_retried_job_that_succeeds_completes_once_with_its_result(queue, connection):
    heard = Heard()
    creator = JobCreator(queue, **heard.handlers())
    job = creator.create(FAILS_UNTIL, {"succeeds_on": 2}, attempts=5)
    worker = WorkerThread(["options"], connection)
    try:
        creator.wait()
    finally:
        worker.stop()
    ends = [event for event in heard.of(job.id) if event[0] in ("completed", "failed")]
    assert ends == [("completed", job.id, "succeeded on try 2")]
    assert len(tries_of(connection, job.id)) == 2


def test_the_waits_between_tries_are_as_asked(queue, connection):
    creator = JobCreator(queue)
    fixed = creator.create(FAILS_UNTIL, {}, attempts=3, backoff={"type": "fixed", "delay": 1})
    exponential = {"type": "exponential", "delay": 2}  # waits of 1 s, then 3 s
    growing = creator.create(FAILS_UNTIL, {}, attempts=3, backoff=exponential)
    worker = WorkerThread(["options"], connection)
    try:
        creator.wait()
    finally:
        worker.stop()
    for job, waits in ((fixed, [1, 1]), (growing, [1, 3])):
        tries = tries_of(connection, job.id)
        gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
        assert len(gaps) == len(waits)
        assert all(gap >= wait for gap, wait in zip(gaps, waits, strict=True)), gaps


# TTL, removal, result, logs, progress data.


def test_a_job_past_its_ttl_fails_and_its_worker_goes_on(queue, connection):
    heard = Heard()
    creator = JobCreator(queue, **heard.handlers())
    stuck = creator.create("tests.option_jobs.runs_long", {}, ttl=1)
    after = creator.create(RECORDS, {"name": "after"})
    worker = WorkerThread(["options"], connection)
    try:
        creator.wait()
    finally:
        worker.stop()
    assert ("failed", stuck.id, "TTL exceeded") in heard.events
    assert completed_names(heard, after.id) == ["after"]
    assert Job.fetch(stuck.id, connection=connection).get_status() == "failed"


def test_removed_on_complete_the_job_is_gone_and_its_end_still_heard(queue, connection):
    heard = Heard()
    creator = JobCreator(queue, **heard.handlers())
    done = creator.create(RECORDS, {"name": "gone"}, remove_on_complete=True)
    failed = creator.create(FAILS_UNTIL, {}, remove_on_fail=True)
    kept = creator.create(RECORDS, {"name": "kept an hour"}, remove_on_complete=3600)
    work_until_empty(queue)
    creator.wait()
    assert completed_names(heard, done.id) == ["gone"]
    assert ("failed", failed.id, "try 1 failed") in heard.events
    assert not connection.exists(done.key, failed.key)
    assert 3590 <= connection.ttl(kept.key) <= 3600


def test_the_result_progress_data_and_logs_reach_the_creator_and_the_job(queue, connection):
    heard = Heard()
    creator = JobCreator(queue, **heard.handlers())
    job = creator.create("tests.option_jobs.logs_and_reports", {"to": "4153518743"})
    work_until_empty(queue)
    creator.wait()
    assert heard.of(job.id) == [
        ("created", job.id),
        ("started", job.id),
        ("progress", job.id, 50, {"step": "half way"}),
        ("completed", job.id, {"to": "4153518743", "sent": True}),
    ]
    meta = Job.fetch(job.id, connection=connection).meta
    assert meta["logs"] == ["sending to 4153518743", "{'sent': True}"]
    assert meta["progress_data"] == {"step": "half way"}


def test_the_course_s_handlers_of_one_argument_still_work(queue):
    """completed(job_id) as the course writes it: given the id alone."""
    ended = []
    creator = JobCreator(queue, completed=ended.append)
    job = creator.create(RECORDS, {"name": "course"})
    work_until_empty(queue)
    creator.wait()
    assert ended == [job.id]


# Queue-level events.


def test_queue_events_hear_every_job_whoever_created_it(queue, connection):
    completed = []
    listener = QueueEvents(queue, completed=lambda job_id, result: completed.append(job_id))
    listener.listen_in_background()
    first, second = JobCreator(queue), JobCreator(queue)
    ids = [first.create(RECORDS, {"name": "one"}).id, second.create(RECORDS, {"name": "two"}).id]
    ids.append(first.create(RECORDS, {"name": "three"}, priority="high").id)
    work_until_empty(queue)
    first.wait()
    second.wait()
    wait_until(lambda: len(completed) == 3, timeout=10)
    listener.close()
    assert sorted(completed, key=int) == ids


# Pause and shutdown.


def test_a_paused_queue_gives_no_job_until_resumed(queue, connection):
    creator = JobCreator(queue)
    job = creator.create(RECORDS, {"name": "waits"}, priority="high")
    pause_queue(queue)
    assert is_paused(queue)
    work_until_empty(queue)  # a burst worker finds nothing to take
    assert job.get_status(refresh=True) == "queued"
    assert runs(connection) == []
    resume_queue(queue)
    work_until_empty(queue)
    assert runs(connection) == ["waits"]


def test_a_pause_lets_the_job_in_hand_finish(queue, connection):
    held_jobs.reset()
    creator = JobCreator(queue)
    in_hand = creator.create("tests.held_jobs.waits_for_the_test", {})
    worker = WorkerThread(["options"], connection)
    try:
        assert held_jobs.running.wait(10)
        pause_queue(queue)
        nxt = creator.create(RECORDS, {"name": "after the pause"})
        held_jobs.may_end.set()
        wait_until(lambda: in_hand.get_status(refresh=True) == "finished", timeout=10)
        assert nxt.get_status(refresh=True) == "queued"
        resume_queue(queue)
        wait_until(lambda: nxt.get_status(refresh=True) == "finished", timeout=10)
    finally:
        worker.stop()
    assert runs(connection) == ["after the pause"]


def test_shutdown_fails_the_job_still_in_hand_past_its_time(queue, connection):
    heard = Heard()
    creator = JobCreator(queue, **heard.handlers())
    job = creator.create("tests.option_jobs.runs_long", {})
    worker = WorkerThread(["options"], connection)
    wait_until(lambda: job.get_status(refresh=True) == "started", timeout=10)
    worker.stop(timeout=1)
    assert not worker.is_alive()
    creator.wait()
    assert ("failed", job.id, "Shut down before the job ended") in heard.events
    assert job.get_status(refresh=True) == "failed"
    assert queue.started_job_registry.count == 0


def test_removal_with_a_count_keeps_the_last_jobs_of_their_kind(queue, connection):
    """BullMQ's removeOnComplete {count}: the queue's finished jobs trimmed to the last n,
    on JobWorker's path and on RQ's own (a job with attempts runs through RQ's code)."""
    creator = JobCreator(queue)
    last_two = {"count": 2}
    done = [creator.create(RECORDS, {"name": n}, remove_on_complete=last_two) for n in "abcd"]
    retried = creator.create(
        FAILS_UNTIL, {"succeeds_on": 1}, attempts=2, remove_on_complete=last_two
    )
    failed = [creator.create(FAILS_UNTIL, {}, remove_on_fail={"count": 1, "age": 60}) for _ in "ab"]
    work_until_empty(queue)
    creator.wait()
    assert queue.finished_job_registry.get_job_ids() == [done[3].id, retried.id]
    assert not connection.exists(*(job.key for job in done[:3]))
    assert queue.failed_job_registry.get_job_ids() == [failed[1].id]
    assert not connection.exists(failed[0].key)
    assert 50 <= connection.ttl(failed[1].key) <= 60


def test_a_worker_of_a_paused_queue_waits_without_taking_its_jobs(queue, connection):
    """No pop-and-put-back loop: while paused, the worker does not wait on the queue."""
    job = JobCreator(queue).create(RECORDS, {"name": "paused"})
    pause_queue(queue)
    worker = WorkerThread(["options"], connection)
    try:
        wait_until(lambda: queue.connection.smembers("rq:workers:options"), what="a worker")
        connection.config_resetstat()
        heartbeats = set()

        def two_heartbeats_later() -> bool:
            (name,) = connection.smembers("rq:workers:options")
            heartbeats.add(connection.hget(b"rq:worker:" + name.split(b":")[-1], "last_heartbeat"))
            return len(heartbeats) >= 3

        wait_until(two_heartbeats_later, timeout=10, what="two of the worker's seconds")
        stats = connection.info("commandstats")
        pops = sum(
            stats.get(f"cmdstat_{name}", {}).get("calls", 0)
            for name in ("blmove", "lmove", "lpush")
        )
        assert pops == 0
        assert job.get_status(refresh=True) == "queued"
    finally:
        worker.stop()


def test_exponential_waits_keep_their_fractions_and_retries_are_never_early():
    """Kue rounds to the millisecond: a wait of 0.5 s is no wait of 0."""
    options = job_options(attempts=4, backoff={"type": "exponential", "delay": 1})
    assert options.waits == (0.5, 1.5, 3.5)
    assert options.retry().intervals == [2, 3, 5]  # each rounded up, plus RQ's second


def test_a_creator_hears_its_job_removed_and_waits_no_more(queue, connection):
    heard = Heard()
    creator = JobCreator(queue, **heard.handlers())
    job = creator.create(RECORDS, {"name": "never run"}, delay=3600)
    assert remove_job(connection, job.id) is True
    creator.wait()  # ends: a removed job will not end otherwise
    assert heard.of(job.id) == [("created", job.id), ("removed", job.id)]
