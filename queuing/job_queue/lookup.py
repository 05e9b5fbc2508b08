"""Kue's lookups on RQ's jobs: `Job.get` (get_job, job_logs), `job.remove` (remove_job),
`Job.range`, `Job.rangeByState`, `Job.rangeByType` (range_jobs, range_by_state,
range_by_type) and the queue's counts (job_counts, all_job_counts, `inactive_count`...).

Kue kept a sorted set per state; RQ keeps a job where its state puts it, and these
read it there, per queue (a type and its priority levels are queues: options.py):

    inactive  the queue's list                  (RQ's `queued`; what `rq info` counts)
    active    the started registry              (`started`; rq info: "executing")
    complete  the finished registry             (`finished`)
    failed    the failed and canceled registries (`failed`, `stopped`, `canceled`)
    delayed   the scheduled and deferred ones   (`scheduled`, `deferred`)

RQ's registries of finished and failed jobs keep an entry past its job's expiry until
RQ's cleanup drops it; a count or a range here leaves such entries out, as RQ counts
after its cleanup. A started job whose worker stopped (its entry expired) is failed
first, by RQ's own cleanup (events.clean_up_abandoned_jobs): `rq info` does the same
before it counts, and without it such a job would stay active for as long as no worker
or listener runs that cleanup.
"""

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from rq import Queue, Worker
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.results import Result
from rq.utils import current_timestamp

from queuing.job_queue.bookkeeping import RestoredJob
from queuing.job_queue.events import (
    EVENTS_KEPT,
    clean_up_abandoned_jobs,
    events_key,
    stored_error,
)
from queuing.job_queue.options import (
    base_queue_name,
    priorities_key,
    priority_of,
    priority_queue_name,
)

STATES = ("inactive", "active", "complete", "failed", "delayed")
ORDERS = ("asc", "desc")
STATE_OF = {
    JobStatus.CREATED: "inactive",
    JobStatus.QUEUED: "inactive",
    JobStatus.READY_TO_ENQUEUE: "inactive",
    JobStatus.RATE_LIMITED: "inactive",
    JobStatus.STARTED: "active",
    JobStatus.FINISHED: "complete",
    JobStatus.FAILED: "failed",
    JobStatus.STOPPED: "failed",
    JobStatus.CANCELED: "failed",
    JobStatus.SCHEDULED: "delayed",
    JobStatus.DEFERRED: "delayed",
}
# The statuses of a job that ran and failed: one more attempt made than RQ's retries show.
RAN_AND_FAILED = (JobStatus.FAILED, JobStatus.STOPPED)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER = re.compile(r"[0-9]+")

# Where each state's jobs are, in one queue: ("list", key) a queue's list; ("live", key) a
# registry whose entries RQ's cleanup drops once their score (expiry) is past; ("started",
# key) the same, its entries `<job id>:<execution id>`; ("all", key) a registry kept whole.
Place = tuple[str, str]


def _places(connection: redis.Redis, queue_name: str) -> dict[str, list[Place]]:
    def key(registry: type) -> str:
        return registry(queue_name, connection=connection).key

    return {
        "inactive": [("list", Queue(queue_name, connection=connection).key)],
        "active": [("started", key(StartedJobRegistry))],
        "complete": [("live", key(FinishedJobRegistry))],
        "failed": [("live", key(FailedJobRegistry)), ("all", key(CanceledJobRegistry))],
        "delayed": [("all", key(ScheduledJobRegistry)), ("all", key(DeferredJobRegistry))],
    }


# ------------------------------------------------------------------ one job


class _LookedUpJob(RestoredJob):
    """A job read with its latest result in the same round trip: events.stored_error
    asks the job for that result, and gets it without another."""

    latest: Result | None = None

    def latest_result(self, timeout: int = 0) -> Result | None:
        return self.latest


def get_job(connection: redis.Redis, job_id: str) -> dict | None:
    """Kue's `Job.get(id)` as its JSON shows it (Job.toJSON), or None for an unknown id.

    The fields in Kue's order: id, type, data, result, priority, progress,
    progress_data, state, error, created_at, promote_at, updated_at, failed_at,
    started_at, duration, delay, workerId, ttl, attempts {made, remaining, max}; then
    `options` (as given to the creator) and `logs`. With Kue's types: timestamps,
    durations, delay and ttl are milliseconds as strings (Kue kept them as hash fields),
    `progress` the percent as a string once reported (else 0), `priority` a number. As
    Kue's JSON.stringify drops what is undefined, a field without a value is left out
    (a job not yet run has no started_at); `data`, `options` and `logs` are always there.
    """
    return get_jobs(connection, [job_id])[0]


def get_jobs(connection: redis.Redis, job_ids: list[str]) -> list[dict | None]:
    """get_job for each id, in two round trips however many (None for an unknown one)."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hgetall(Job.key_for(job_id))
        hashes = pipe.execute()
    jobs = [_restored(connection, job_id, raw) for job_id, raw in zip(job_ids, hashes, strict=True)]
    found = [job for job in jobs if job is not None]
    with connection.pipeline(transaction=False) as pipe:
        for job in found:
            pipe.xrevrange(Result.get_key(job.id), "+", "-", count=1)
            pipe.zscore(ScheduledJobRegistry(job.origin, connection=connection).key, job.id)
        replies = iter(pipe.execute())
    shown = {}
    for job in found:
        job.latest = _result(job, next(replies))
        shown[job.id] = _kue_json(job, next(replies))
    return [shown.get(job.id) if job is not None else None for job in jobs]


def _restored(connection: redis.Redis, job_id: str, raw: dict) -> _LookedUpJob | None:
    if not raw:
        return None
    job = _LookedUpJob(job_id, connection=connection)
    try:
        job.restore(raw)
    except NoSuchJobError:  # a hash without RQ's fields: no job RQ could run
        return None
    return job


def _result(job: Job, reply: list) -> Result | None:
    if not reply:
        return None
    result_id, payload = reply[0]
    try:
        return Result.restore(
            job.id,
            result_id.decode(),
            payload,
            connection=job.connection,
            serializer=job.serializer,
        )
    except Exception:  # a return value this process cannot unpickle: shown as no result
        return None


def _kue_json(job: _LookedUpJob, promote_at: float | None) -> dict:
    status = job.get_status(refresh=False)
    state = STATE_OF.get(status, "inactive")
    options = job.meta.get("options", {})
    result = job.latest
    succeeded = result is not None and result.type == Result.Type.SUCCESSFUL
    failed = result if result is not None and result.type == Result.Type.FAILED else None
    progress = job.meta.get("progress")
    shown = {
        "id": job.id,
        "type": base_queue_name(job.origin),
        "data": _data(job),
        "result": _as_json(result.return_value) if succeeded else None,
        "priority": priority_of(job.origin),
        "progress": 0 if progress is None else str(progress),
        "progress_data": _as_json(job.meta.get("progress_data")),
        "state": state,
        "error": stored_error(job) if state == "failed" or failed else None,
        "created_at": _ms(job.created_at),
        "promote_at": None if promote_at is None else str(round(promote_at * 1000)),
        "updated_at": _ms(_last_change(job)),
        "failed_at": _ms(failed.created_at if failed else _ended_failed(job, state)),
        "started_at": _ms(job.started_at),
        "duration": _duration(job) if state == "complete" else None,
        "delay": _delay(options.get("delay"), job.created_at),
        "workerId": job.worker_name,
        "ttl": str(job.timeout * 1000) if "ttl" in options and job.timeout else None,
        "attempts": _attempts(job, options.get("attempts", 1), status),
        "options": options,
        "logs": list(job.meta.get("logs", [])),
    }
    return {name: value for name, value in shown.items() if value is not None or name == "data"}


def _data(job: Job) -> Any:
    try:
        return _as_json(job.args[0]) if job.args else None
    except DeserializationError:  # pickled with a class this process cannot import
        return None


def _as_json(value: Any) -> Any:
    """`value` as JSON holds it (a tuple becomes a list...); its repr when JSON cannot."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return repr(value)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # RQ writes UTC clock times


def _ms(at: datetime | None) -> str | None:
    """Milliseconds since the epoch, as Kue's timestamps (strings)."""
    return None if at is None else str((_utc(at) - _EPOCH) // timedelta(milliseconds=1))


def _last_change(job: Job) -> datetime:
    dates = (job.created_at, job.enqueued_at, job.started_at, job.ended_at, job.last_heartbeat)
    return max(_utc(at) for at in dates if at is not None)


def _ended_failed(job: Job, state: str) -> datetime | None:
    return job.ended_at if state == "failed" else None


def _duration(job: Job) -> str | None:
    if job.started_at is None or job.ended_at is None:
        return None
    return str((_utc(job.ended_at) - _utc(job.started_at)) // timedelta(milliseconds=1))


def _delay(given: Any, created_at: datetime) -> str | None:
    """The delay option in ms, as Kue shows it (only one above 0). options.py keeps it as
    given: seconds, or a date (ISO text) from which the delay ran from its creation."""
    if isinstance(given, str):
        try:
            at = datetime.fromisoformat(given)
        except ValueError:
            return None
        given = at.timestamp() - created_at.timestamp()  # a naive date is local, as given
    if isinstance(given, (int, float)) and not isinstance(given, bool) and given > 0:
        return str(round(given * 1000))
    return None


def _attempts(job: Job, most: Any, status: JobStatus) -> dict[str, int]:
    """Kue's attempts: `made` counts the failed ones. RQ's Retry counts retries down
    from attempts - 1, one per failed attempt it retries; the last failure ends the
    job failed without counting."""
    most = most if isinstance(most, int) and most >= 1 else 1
    retried = most - 1 - (job.retries_left or 0)
    made = min(most, max(0, retried) + (1 if status in RAN_AND_FAILED else 0))
    return {"made": made, "remaining": most - made, "max": most}


def job_logs(connection: redis.Redis, job_id: str) -> list[str] | None:
    """Kue's `Job.log(id)`: the lines the job kept (events.log_line); None for an
    unknown id."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return None
    return list(job.meta.get("logs", []))


def remove_job(connection: redis.Redis, job_id: str) -> bool:
    """Kue's `job.remove()`: RQ's own delete of the job (its hash, the queue or the
    registry it is in, its results and executions) and a `remove` event on its stream,
    in one MULTI/EXEC, so that no reader sees one without the other; False for an
    unknown id.

    Every change of a job's state writes its hash, which is WATCHed: a job that moves
    meanwhile (taken by a worker, promoted, ended) is read again and removed from where
    it is then.

    A running job may be removed, as in Kue: its function runs on to its end, which
    nothing then records on the project's fast path (JobWorker's step writes an outcome
    only for a job still started by that worker): no result, no end event, the job stays
    gone. Jobs run by RQ's own code (a stock `rq worker`, or a job with attempts left)
    are saved again by RQ as they end, and come back finished or failed.
    """
    key = Job.key_for(job_id)
    with connection.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                try:
                    job = Job.fetch(job_id, connection=connection)
                except NoSuchJobError:
                    return False
                pipe.multi()
                job.delete(pipeline=pipe)
                entry = {"job": job.id, "event": "remove"}
                pipe.xadd(events_key(job.origin), entry, maxlen=EVENTS_KEPT, approximate=True)
                pipe.execute()
                return True
            except redis.WatchError:
                continue


# ------------------------------------------------------------------ ranges


def queues_of_type(connection: redis.Redis, job_type: str) -> list[str]:
    """A type's queue and those of the priority levels its jobs were given."""
    levels = connection.zrange(priorities_key(job_type), 0, -1)
    return [job_type, *(priority_queue_name(job_type, int(level)) for level in levels)]


def all_queues(connection: redis.Redis) -> list[str]:
    """Every queue RQ knows (`Queue.all`: the queues jobs were ever put on)."""
    return sorted(queue.name for queue in Queue.all(connection=connection))


def range_by_state(
    connection: redis.Redis,
    state: str,
    start: int,
    stop: int,
    order: str = "asc",
    job_type: str | None = None,
) -> list[str]:
    """Kue's `Job.rangeByState(state, from, to, order)`: the ids of the jobs in `state`,
    in every queue (or those of `job_type` and its levels), ordered by their number
    (`order` "asc" or "desc"; ids that are not numbers after), from `start` to `stop`
    inclusive, as Redis's ZRANGE counts (-1: the last). ValueError for an unknown state
    or order."""
    _check(state, STATES, "state")
    _check(order, ORDERS, "order")
    queues = all_queues(connection) if job_type is None else queues_of_type(connection, job_type)
    return _page(_ordered(_ids(connection, queues, [state]), order), start, stop)


def range_by_type(
    connection: redis.Redis, job_type: str, state: str, start: int, stop: int, order: str = "asc"
) -> list[str]:
    """Kue's `Job.rangeByType(type, state, from, to, order)`."""
    return range_by_state(connection, state, start, stop, order, job_type)


def range_jobs(connection: redis.Redis, start: int, stop: int, order: str = "asc") -> list[str]:
    """Kue's `Job.range(from, to, order)`: as range_by_state, over every state."""
    _check(order, ORDERS, "order")
    return _page(_ordered(_ids(connection, all_queues(connection), STATES), order), start, stop)


def _check(value: str, known: tuple[str, ...], what: str) -> None:
    if value not in known:
        raise ValueError(f"unknown {what} {value!r}: one of {', '.join(known)}")


def _ids(connection: redis.Redis, queues: list[str], states: Iterable[str]) -> set[str]:
    _fail_abandoned_jobs(connection, queues)
    places = [
        place for name in queues for state in states for place in _places(connection, name)[state]
    ]
    now = current_timestamp()
    with connection.pipeline(transaction=False) as pipe:
        for kind, key in places:
            if kind == "list":
                pipe.lrange(key, 0, -1)
            else:
                pipe.zrange(key, 0, -1, withscores=True)
        replies = pipe.execute()
    ids = set()
    for (kind, _), reply in zip(places, replies, strict=True):
        if kind == "list":
            ids.update(entry.decode() for entry in reply)
            continue
        live = [entry for entry, score in reply if kind == "all" or not 0 <= score <= now]
        if kind == "started":
            ids.update(StartedJobRegistry.parse_job_id(entry) for entry in live)
        else:
            ids.update(entry.decode() for entry in live)
    return ids


def _ordered(ids: set[str], order: str) -> list[str]:
    descending = order == "desc"
    numbers = sorted((i for i in ids if _NUMBER.fullmatch(i)), key=int, reverse=descending)
    others = sorted((i for i in ids if not _NUMBER.fullmatch(i)), reverse=descending)
    return numbers + others


def _page(ids: list[str], start: int, stop: int) -> list[str]:
    """ids[start..stop], both inclusive, negative ones from the end, as ZRANGE (Kue's)."""
    count = len(ids)
    start = max(0, start + count) if start < 0 else start
    stop = stop + count if stop < 0 else stop
    return ids[start : stop + 1] if stop >= start else []


# ------------------------------------------------------------------ counts


def job_counts(queue: Queue) -> dict[str, int]:
    """Kue's counts of a queue (a type) with its priority levels: inactive, active,
    complete, failed, delayed; what RQ's own counts of the same queues add up to (queued,
    started, finished, failed + canceled, scheduled + deferred), `rq info`'s among them."""
    names = queues_of_type(queue.connection, base_queue_name(queue.name))
    return _counts(queue.connection, names)


def all_job_counts(connection: redis.Redis) -> dict[str, int]:
    """job_counts over every queue RQ knows (Kue's /stats)."""
    return _counts(connection, all_queues(connection))


def inactive_count(queue: Queue) -> int:
    return job_counts(queue)["inactive"]


def active_count(queue: Queue) -> int:
    return job_counts(queue)["active"]


def complete_count(queue: Queue) -> int:
    return job_counts(queue)["complete"]


def failed_count(queue: Queue) -> int:
    return job_counts(queue)["failed"]


def delayed_count(queue: Queue) -> int:
    return job_counts(queue)["delayed"]


def _counts(connection: redis.Redis, queues: list[str]) -> dict[str, int]:
    _fail_abandoned_jobs(connection, queues)
    places = [
        (state, place)
        for name in queues
        for state, state_places in _places(connection, name).items()
        for place in state_places
    ]
    now = current_timestamp()
    with connection.pipeline(transaction=False) as pipe:
        for _, (kind, key) in places:
            if kind == "list":
                pipe.llen(key)
            else:
                pipe.zcard(key)
            if kind in ("live", "started"):  # what RQ's cleanup drops: expiry from 0 to now
                pipe.zcount(key, 0, now)
        replies = iter(pipe.execute())
    counts = dict.fromkeys(STATES, 0)
    for state, (kind, _) in places:
        counts[state] += next(replies) - (next(replies) if kind in ("live", "started") else 0)
    return counts


def _fail_abandoned_jobs(connection: redis.Redis, queues: list[str]) -> None:
    """RQ's cleanup of the started jobs whose worker stopped, in the queues that have
    any (one round trip to find them)."""
    now = current_timestamp()
    with connection.pipeline(transaction=False) as pipe:
        for name in queues:
            pipe.zcount(StartedJobRegistry(name, connection=connection).key, 0, now)
        expired = pipe.execute()
    for name, count in zip(queues, expired, strict=True):
        if count:
            clean_up_abandoned_jobs(Queue(name, connection=connection))


def work_time(connection: redis.Redis) -> int:
    """Kue's workTime, in ms, as RQ can tell it: the time the workers registered now
    (`rq info`'s) spent running jobs, their total_working_time added up. A worker that
    stopped takes its share with it (RQ forgets a worker a minute after it stops), where
    Kue counted every job's time since its queue began."""
    seconds = sum(worker.total_working_time for worker in Worker.all(connection=connection))
    return round(seconds * 1000)
