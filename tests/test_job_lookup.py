"""Kue's lookups on RQ's jobs (queuing/job_queue/lookup.py): a job as Kue's Job.toJSON
shows it in each state, its removal, the ranges by state and type, and the counts,
which must be RQ's own (`rq info`'s)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import redis
from rq import Queue, SimpleWorker, get_current_job
from rq.job import Job
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from queuing.job_queue import JobWorker, report_progress, types
from queuing.job_queue.events import log_line
from queuing.job_queue.lookup import (
    active_count,
    all_job_counts,
    complete_count,
    delayed_count,
    failed_count,
    get_job,
    get_jobs,
    inactive_count,
    job_counts,
    job_logs,
    queues_of_type,
    range_by_state,
    range_by_type,
    range_jobs,
    remove_job,
    work_time,
)
from queuing.job_queue.promoting import promote_job
from queuing.job_queue.types import create_job_of_type
from tests.rq_cli import rq_cli

TYPE = "lookup_email"  # its jobs run `email` below, in this process's workers
seen: dict = {}  # what a job saw while it ran, for the test to check after


def email(data: dict) -> object:
    """A job of TYPE: does what its data says."""
    what = data.get("do", "send")
    if what == "fail":
        raise ValueError(f"no such address: {data.get('to')}")
    if what.startswith("remove itself"):
        job = get_current_job()
        seen["before"] = get_job(job.connection, job.id)["state"]
        seen["removed"] = remove_job(job.connection, job.id)
        if what == "remove itself":
            return "removed"
    if what == "look":
        look_around(get_current_job())
    if what == "set":
        return {1, 2}  # no JSON for a set
    report_progress(3, 4, {"sent": 3})
    log_line("sent to %s", data.get("to"))
    return {"to": data.get("to"), "sent": True}


def look_around(job: Job) -> None:
    """While this job runs (started): what the lookups count, and RQ."""
    connection = job.connection
    seen["counts"] = job_counts(Queue(TYPE, connection=connection))
    seen["rq"] = rq_counts(connection, queues_of_type(connection, TYPE))
    seen["work_time"] = work_time(connection)
    worker_time = connection.hget(f"rq:worker:{job.worker_name}", "total_working_time")
    seen["worker_seconds"] = float(worker_time or 0)
    if "url" in seen:
        seen["rq info"] = rq_cli("info", "--raw", "--only-queues", "--url", seen["url"]).stdout


types.register(TYPE, email)


@pytest.fixture(autouse=True)
def nothing_seen_yet():
    seen.clear()


def work(connection: redis.Redis, *queue_names: str) -> None:
    queues = [Queue(name, connection=connection) for name in queue_names or [TYPE]]
    JobWorker(queues, connection=connection).work(burst=True, logging_level="CRITICAL")


def ms(at: datetime) -> str:
    """A date as Kue's timestamps: milliseconds since the epoch, as text."""
    return str(round(at.replace(tzinfo=at.tzinfo or UTC).timestamp() * 1_000_000) // 1000)


def rq_counts(connection: redis.Redis, queue_names: list[str]) -> dict[str, int]:
    """RQ's own counts of the queues, added up per Kue state (each with RQ's cleanup)."""
    counts = dict.fromkeys(("inactive", "active", "complete", "failed", "delayed"), 0)
    for name in queue_names:
        queue = Queue(name, connection=connection)

        def count(registry: type, name: str = name) -> int:
            return registry(name, connection=connection).count

        counts["inactive"] += queue.count
        counts["active"] += count(StartedJobRegistry)
        counts["complete"] += count(FinishedJobRegistry)
        counts["failed"] += count(FailedJobRegistry) + count(CanceledJobRegistry)
        counts["delayed"] += count(ScheduledJobRegistry) + count(DeferredJobRegistry)
    return counts


def keys_of(connection: redis.Redis, job_id: str) -> list[bytes]:
    """RQ's keys of a job: its hash, results, executions, dependents..."""
    return sorted(connection.keys(f"rq:*:{job_id}") + connection.keys(f"rq:*:{job_id}:*"))


def events(connection: redis.Redis, queue_name: str = TYPE) -> list[dict[str, str]]:
    return [
        {key.decode(): value.decode() for key, value in fields.items()}
        for _, fields in connection.xrange(f"job_queue:events:{queue_name}")
    ]


# ------------------------------------------------------------------ one job, as Kue shows it


def test_a_queued_job_shows_kue_s_fields_in_kue_s_order(connection):
    job = create_job_of_type(connection, TYPE, {"to": "tj"}, priority="high", attempts=3, ttl=1.5)
    stored = Job.fetch(job.id, connection=connection)
    shown = get_job(connection, job.id)
    assert shown == {
        "id": "1",
        "type": TYPE,
        "data": {"to": "tj"},
        "priority": -10,
        "progress": 0,
        "state": "inactive",
        "created_at": ms(stored.created_at),
        "updated_at": ms(stored.enqueued_at),
        "ttl": "2000",  # RQ's timeout: whole seconds
        "attempts": {"made": 0, "remaining": 3, "max": 3},
        "options": {"priority": "high", "attempts": 3, "ttl": 1.5},
        "logs": [],
    }
    assert list(shown) == [
        "id", "type", "data", "priority", "progress", "state", "created_at", "updated_at",
        "ttl", "attempts", "options", "logs",
    ]  # fmt: skip


def test_a_completed_job_shows_its_result_progress_logs_and_duration(connection):
    job = create_job_of_type(connection, TYPE, {"to": "tj"})
    work(connection)
    stored = Job.fetch(job.id, connection=connection)
    assert get_job(connection, job.id) == {
        "id": "1",
        "type": TYPE,
        "data": {"to": "tj"},
        "result": {"to": "tj", "sent": True},
        "priority": 0,
        "progress": "75",
        "progress_data": {"sent": 3},
        "state": "complete",
        "created_at": ms(stored.created_at),
        "updated_at": ms(stored.ended_at),
        "started_at": ms(stored.started_at),
        "duration": str((stored.ended_at - stored.started_at) // timedelta(milliseconds=1)),
        "workerId": stored.worker_name,
        "attempts": {"made": 0, "remaining": 1, "max": 1},
        "options": {},
        "logs": ["sent to tj"],
    }
    assert job_logs(connection, job.id) == ["sent to tj"]


def test_a_result_json_cannot_hold_is_shown_as_its_repr(connection):
    job = create_job_of_type(connection, TYPE, {"do": "set"})
    work(connection)
    assert get_job(connection, job.id)["result"] == "{1, 2}"


def test_a_failed_job_shows_its_error_and_every_attempt_made(connection):
    job = create_job_of_type(connection, TYPE, {"do": "fail", "to": "x"}, attempts=2)
    work(connection)  # the retry waits for nothing: both attempts run
    stored = Job.fetch(job.id, connection=connection)
    shown = get_job(connection, job.id)
    assert shown["state"] == "failed"
    assert shown["error"] == "no such address: x"
    assert shown["failed_at"] == ms(stored.latest_result().created_at)
    assert shown["attempts"] == {"made": 2, "remaining": 0, "max": 2}
    assert "result" not in shown and "duration" not in shown


def test_a_job_waiting_for_its_next_attempt_is_delayed(connection):
    backoff = {"type": "fixed", "delay": 30}
    job = create_job_of_type(connection, TYPE, {"do": "fail"}, attempts=3, backoff=backoff)
    work(connection)
    due = connection.zscore(f"rq:scheduled:{TYPE}", job.id)
    shown = get_job(connection, job.id)
    assert shown["state"] == "delayed"
    assert shown["promote_at"] == str(round(due * 1000))
    assert shown["attempts"] == {"made": 1, "remaining": 2, "max": 3}
    # RQ stores no error for an attempt it retries: its `failed attempt` event has it.
    assert "error" not in shown
    assert events(connection)[-1]["error"] == "no such address: None"


def test_a_delayed_job_shows_when_it_is_due_and_its_delay_in_ms(connection):
    job = create_job_of_type(connection, TYPE, {}, delay=86.4)
    due = connection.zscore(f"rq:scheduled:{TYPE}", job.id)
    shown = get_job(connection, job.id)
    assert (shown["state"], shown["delay"]) == ("delayed", "86400")
    assert shown["promote_at"] == str(round(due * 1000))


def test_a_canceled_job_is_failed(connection):
    job = create_job_of_type(connection, TYPE, {})
    Job.fetch(job.id, connection=connection).cancel()
    shown = get_job(connection, job.id)
    assert (shown["state"], shown["error"]) == ("failed", "Job canceled")
    assert shown["attempts"] == {"made": 0, "remaining": 1, "max": 1}  # it never ran
    assert failed_count(Queue(TYPE, connection=connection)) == 1


def test_a_job_rq_queued_itself_shows_too(connection):
    job = Queue("plain", connection=connection).enqueue("tests.worker_jobs.returns", {"a": 1})
    shown = get_job(connection, job.id)
    assert (shown["id"], shown["type"], shown["data"], shown["state"]) == (
        job.id,
        "plain",
        {"a": 1},
        "inactive",
    )
    assert (shown["options"], shown["attempts"]) == ({}, {"made": 0, "remaining": 1, "max": 1})


def test_an_unknown_job_is_none(connection):
    assert get_job(connection, "7") is None
    assert job_logs(connection, "7") is None
    job = create_job_of_type(connection, TYPE, {})
    assert get_jobs(connection, ["7", job.id, "8"]) == [None, get_job(connection, job.id), None]
    assert job_logs(connection, job.id) == []


# ------------------------------------------------------------------ removal


def test_remove_deletes_the_job_its_result_and_its_entry_and_tells_its_stream(connection):
    job = create_job_of_type(connection, TYPE, {"to": "tj"})
    work(connection)
    assert connection.exists(f"rq:results:{job.id}")
    assert remove_job(connection, job.id) is True
    assert not connection.exists(f"rq:job:{job.id}", f"rq:results:{job.id}")
    assert connection.zrange(f"rq:finished:{TYPE}", 0, -1) == []
    assert events(connection)[-1] == {"job": job.id, "event": "remove"}
    assert get_job(connection, job.id) is None
    assert remove_job(connection, job.id) is False
    assert remove_job(connection, "99") is False
    assert [event["event"] for event in events(connection)].count("remove") == 1


def test_remove_writes_the_delete_and_its_event_in_one_transaction(connection):
    job = create_job_of_type(connection, TYPE, {})
    with connection.monitor() as monitor:
        remove_job(connection, job.id)
        commands = []
        while not commands or commands[-1] != "EXEC":
            commands.append(monitor.next_command()["command"])
    transaction = commands[commands.index("MULTI") :]
    assert f"LREM rq:queue:{TYPE} 1 1" in transaction
    assert any(command.startswith("DEL rq:job:1 ") for command in transaction)
    assert any(command.startswith(f"XADD job_queue:events:{TYPE} ") for command in transaction)


def test_a_job_that_moves_while_it_is_removed_is_removed_from_where_it_went(
    connection, monkeypatch
):
    job = create_job_of_type(connection, TYPE, {}, delay=60)
    fetch, statuses = Job.fetch, []

    def fetch_while_it_moves(job_id: str, connection=None, serializer=None) -> Job:
        found = fetch(job_id, connection=connection, serializer=serializer)
        if not statuses:
            promote_job(found)  # from the scheduled registry to the queue, meanwhile
        statuses.append(found.get_status(refresh=False).value)
        return found

    monkeypatch.setattr(Job, "fetch", staticmethod(fetch_while_it_moves))
    assert remove_job(connection, job.id) is True
    assert statuses == ["scheduled", "queued"]  # read again once its hash changed
    assert connection.llen(f"rq:queue:{TYPE}") == 0
    assert connection.zcard(f"rq:scheduled:{TYPE}") == 0
    assert not connection.exists(f"rq:job:{job.id}")


def test_a_queued_job_removed_never_runs(connection):
    job = create_job_of_type(connection, TYPE, {"do": "remove itself"})
    remove_job(connection, job.id)
    work(connection)
    assert seen == {}
    assert [event["event"] for event in events(connection)] == ["created", "remove"]


def test_a_running_job_removed_runs_to_its_end_and_stays_removed(connection):
    job = create_job_of_type(connection, TYPE, {"do": "remove itself"})
    work(connection)
    assert seen == {"before": "active", "removed": True}
    assert get_job(connection, job.id) is None
    assert keys_of(connection, job.id) == []  # no hash, no result, no execution
    assert connection.zcard(f"rq:finished:{TYPE}") == connection.zcard(f"rq:wip:{TYPE}") == 0
    # Its end is told to no one: the stream's last word on it is its removal.
    assert [event["event"] for event in events(connection)] == ["created", "start", "remove"]


def test_a_running_job_removed_that_reports_progress_after_stays_removed(connection):
    job = create_job_of_type(connection, TYPE, {"do": "remove itself, then report"})
    work(connection)
    assert seen == {"before": "active", "removed": True}
    assert keys_of(connection, job.id) == []


def test_a_running_job_removed_that_rq_s_own_code_ends_comes_back_finished(connection):
    # A stock RQ worker runs the job with RQ's own code, which saves it as it ends.
    job = create_job_of_type(connection, TYPE, {"do": "remove itself"}, attempts=2)
    queue = Queue(TYPE, connection=connection)
    SimpleWorker([queue], connection=connection).work(burst=True, logging_level="CRITICAL")
    assert seen == {"before": "active", "removed": True}
    shown = get_job(connection, job.id)
    assert (shown["state"], shown["options"]) == ("complete", {})  # its meta not saved again
    assert [event["event"] for event in events(connection)] == ["created", "remove"]


# ------------------------------------------------------------------ ranges


@pytest.fixture
def jobs_in_every_state(connection):
    """email: 1 complete, 2 failed, 3 inactive, 4 inactive (high), 5 delayed; sms: 6
    inactive and one RQ queued itself, its id not a number."""
    create_job_of_type(connection, TYPE, {})
    create_job_of_type(connection, TYPE, {"do": "fail"})
    work(connection)
    create_job_of_type(connection, TYPE, {})
    create_job_of_type(connection, TYPE, {}, priority="high")
    create_job_of_type(connection, TYPE, {}, delay=60)
    create_job_of_type(connection, "sms", {})
    return Queue("sms", connection=connection).enqueue("tests.worker_jobs.returns", {}).id


def test_ranges_by_state_order_by_number_and_count_as_redis_zrange(connection, jobs_in_every_state):
    other = jobs_in_every_state
    assert range_by_state(connection, "inactive", 0, -1) == ["3", "4", "6", other]
    assert range_by_state(connection, "inactive", 0, -1, "desc") == ["6", "4", "3", other]
    assert range_by_state(connection, "inactive", 0, 1) == ["3", "4"]
    assert range_by_state(connection, "inactive", 1, 1, "desc") == ["4"]
    assert range_by_state(connection, "inactive", -2, -1) == ["6", other]
    assert range_by_state(connection, "inactive", 3, 9) == [other]
    assert range_by_state(connection, "inactive", 2, 1) == []
    assert range_by_state(connection, "complete", 0, -1) == ["1"]
    assert range_by_state(connection, "failed", 0, -1) == ["2"]
    assert range_by_state(connection, "delayed", 0, -1) == ["5"]
    assert range_by_state(connection, "active", 0, -1) == []


def test_ranges_of_a_type_take_its_priority_levels(connection, jobs_in_every_state):
    assert queues_of_type(connection, TYPE) == [TYPE, f"{TYPE}:high"]
    assert range_by_state(connection, "inactive", 0, -1, job_type=TYPE) == ["3", "4"]
    assert range_by_type(connection, TYPE, "inactive", 0, 0, "desc") == ["4"]
    assert range_by_type(connection, "sms", "inactive", 0, -1) == ["6", jobs_in_every_state]
    assert range_by_type(connection, "none", "inactive", 0, -1) == []


def test_a_range_of_every_state(connection, jobs_in_every_state):
    assert range_jobs(connection, 0, -1) == ["1", "2", "3", "4", "5", "6", jobs_in_every_state]
    assert range_jobs(connection, 0, 1, "desc") == ["6", "5"]


@pytest.mark.parametrize(
    ("state", "order", "message"),
    [
        ("done", "asc", "unknown state 'done': one of inactive, active, complete, failed, delayed"),
        ("failed", "up", "unknown order 'up': one of asc, desc"),
    ],
)
def test_an_unknown_state_or_order_is_a_value_error(connection, state, order, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        range_by_state(connection, state, 0, -1, order)
    if order != "asc":
        with pytest.raises(ValueError, match=re.escape(message)):
            range_jobs(connection, 0, -1, order)


def test_expired_registry_entries_are_left_out_as_rq_s_cleanup_drops_them(
    connection, jobs_in_every_state
):
    # An entry whose job expired (its score, the expiry, is past): RQ's count drops it.
    connection.zadd(f"rq:finished:{TYPE}", {"98": 1})
    connection.zadd(f"rq:failed:{TYPE}", {"99": 1})
    assert range_by_state(connection, "complete", 0, -1) == ["1"]
    assert job_counts(Queue(TYPE, connection=connection)) == rq_counts(
        connection, queues_of_type(connection, TYPE)
    )


# ------------------------------------------------------------------ counts


def test_counts_while_a_job_runs_are_rq_s_own(connection, jobs_in_every_state):
    look = create_job_of_type(connection, TYPE, {"do": "look"}, priority="critical")
    work(connection, f"{TYPE}:critical")
    expected = {"inactive": 2, "active": 1, "complete": 1, "failed": 1, "delayed": 1}
    assert seen["counts"] == seen["rq"] == expected
    assert get_job(connection, look.id)["state"] == "complete"


@pytest.mark.slow  # runs RQ's command line
def test_counts_are_what_rq_info_shows(connection, redis_url, jobs_in_every_state):
    seen["url"] = redis_url
    create_job_of_type(connection, TYPE, {"do": "look"}, priority="critical")
    work(connection, f"{TYPE}:critical")
    # "queue <name> <queued>, <n> executing, <n> finished, <n> failed", one line a queue
    shown = {"inactive": 0, "active": 0, "complete": 0, "failed": 0}
    for line in seen["rq info"].splitlines():
        name, queued, executing, finished, failed = re.fullmatch(
            r"queue (\S+) (\d+), (\d+) executing, (\d+) finished, (\d+) failed", line
        ).groups()
        if name.split(":")[0] == TYPE:
            for state, count in zip(shown, (queued, executing, finished, failed), strict=True):
                shown[state] += int(count)
    assert shown == {state: seen["counts"][state] for state in shown}
    assert shown == {"inactive": 2, "active": 1, "complete": 1, "failed": 1}


def test_counts_of_every_queue_and_kue_s_names_for_them(connection, jobs_in_every_state):
    queue = Queue(TYPE, connection=connection)
    assert all_job_counts(connection) == {
        "inactive": 4,
        "active": 0,
        "complete": 1,
        "failed": 1,
        "delayed": 1,
    }
    assert [
        inactive_count(queue),
        active_count(queue),
        complete_count(queue),
        failed_count(queue),
        delayed_count(queue),
    ] == [2, 0, 1, 1, 1]
    assert job_counts(Queue(f"{TYPE}:high", connection=connection)) == job_counts(queue)


def test_a_job_whose_worker_stopped_is_failed_before_it_is_counted(connection):
    # As a worker killed mid-job leaves it: started, its entry past its expiry.
    job = create_job_of_type(connection, TYPE, {})
    connection.lrem(f"rq:queue:{TYPE}", 1, job.id)
    connection.hset(f"rq:job:{job.id}", "status", "started")
    connection.zadd(f"rq:wip:{TYPE}", {f"{job.id}:execution": 1})
    counts = job_counts(Queue(TYPE, connection=connection))
    assert (counts["active"], counts["failed"]) == (0, 1)
    assert get_job(connection, job.id)["state"] == "failed"
    assert events(connection)[-1] == {
        "job": job.id,
        "event": "failed",
        "error": "Job abandoned: its worker stopped before the job ended",
    }


def test_work_time_adds_up_what_the_registered_workers_spent_on_jobs(connection):
    create_job_of_type(connection, TYPE, {})
    create_job_of_type(connection, TYPE, {"do": "look"})  # after the first one
    work(connection)
    assert seen["worker_seconds"] > 0  # the first job's time
    assert seen["work_time"] == round(seen["worker_seconds"] * 1000)
    assert work_time(connection) == 0  # the burst worker is gone, and its time with it
