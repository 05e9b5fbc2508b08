"""Kue's lookups on RQ's jobs: `Job.get` (get_job, job_logs) and `job.remove`
(remove_job) here; the ranges and counts by state (`Job.rangeByState`,
`queue.inactiveCount`...) in states.py, and re-exported here, so that one module has
every lookup.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.results import Result

from queuing.job_queue.bookkeeping import RestoredJob
from queuing.job_queue.events import EVENTS_KEPT, events_key, stored_error
from queuing.job_queue.options import base_queue_name, priority_of
from queuing.job_queue.states import (
    ORDERS,
    STATE_OF,
    STATES,
    active_count,
    all_job_counts,
    all_queues,
    complete_count,
    delayed_count,
    failed_count,
    inactive_count,
    job_counts,
    queues_of_type,
    range_by_state,
    range_by_type,
    range_jobs,
    work_time,
)

__all__ = [
    "ORDERS",
    "STATES",
    "active_count",
    "all_job_counts",
    "all_queues",
    "complete_count",
    "delayed_count",
    "failed_count",
    "get_job",
    "get_jobs",
    "inactive_count",
    "job_counts",
    "job_logs",
    "queues_of_type",
    "range_by_state",
    "range_by_type",
    "range_jobs",
    "remove_job",
    "work_time",
]

# The statuses of a job that ran and failed: one more attempt made than RQ's retries show.
RAN_AND_FAILED = (JobStatus.FAILED, JobStatus.STOPPED)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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

    From RQ: `state` from its status (queued: inactive, started: active, finished:
    complete, failed, stopped and canceled: failed, scheduled and deferred: delayed);
    `result` its latest result's return value (its repr where JSON cannot hold it);
    `error` the message of the error RQ stored (events.stored_error; RQ stores none for
    an attempt it retries, whose `failed attempt` event has it); `promote_at` its score
    in the scheduled registry; `workerId` RQ's worker name; `ttl` RQ's timeout, given
    only with the ttl option.
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
    are saved again by RQ as they end, and come back finished or failed. A removed job
    that reports progress or logs a line afterwards writes its meta back, a hash of that
    alone, which no lookup takes for a job (events.report_progress writes it blindly).
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
