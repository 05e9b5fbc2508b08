"""Where RQ keeps the jobs of each of Kue's states, and Kue's ranges and counts read
there: `Job.range`, `Job.rangeByState`, `Job.rangeByType` (range_jobs, range_by_state,
range_by_type) and the queue's counts (job_counts, all_job_counts, `inactive_count`...).

Kue kept a sorted set per state; RQ keeps a job where its state puts it, per queue (a
type and its priority levels are queues: options.py):

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

import re
from collections.abc import Iterable

import redis
from rq import Queue, Worker
from rq.job import JobStatus
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.utils import current_timestamp

from queuing.job_queue.events import clean_up_abandoned_jobs
from queuing.job_queue.options import base_queue_name, priorities_key, priority_queue_name

STATES = ("inactive", "active", "complete", "failed", "delayed")
ORDERS = ("asc", "desc")
# Kue's state of a job of each RQ status (get_job's `state`).
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
_NUMBER = re.compile(r"[0-9]+")

# Where each state's jobs are, in one queue: ("list", key) a queue's list; ("live", key) a
# registry whose entries RQ's cleanup drops once their score (expiry) is past; ("started",
# key) the same, its entries `<job id>:<execution id>`; ("all", key) a registry kept whole.
Place = tuple[str, str]
EXPIRING = ("live", "started")


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


def _places_of(
    connection: redis.Redis, queues: list[str], states: Iterable[str]
) -> list[tuple[str, Place]]:
    """Where the jobs of `states` are in `queues`: (state, place) pairs."""
    places = []
    for name in queues:
        of_queue = _places(connection, name)
        places += [(state, place) for state in states for place in of_queue[state]]
    return places


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
    places = [place for _, place in _places_of(connection, queues, states)]
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
        live = [entry for entry, score in reply if kind not in EXPIRING or not 0 <= score <= now]
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
    places = _places_of(connection, queues, STATES)
    now = current_timestamp()
    with connection.pipeline(transaction=False) as pipe:
        for _, (kind, key) in places:
            if kind == "list":
                pipe.llen(key)
            else:
                pipe.zcard(key)
            if kind in EXPIRING:  # what RQ's cleanup drops: expiry from 0 to now
                pipe.zcount(key, 0, now)
        replies = iter(pipe.execute())
    counts = dict.fromkeys(STATES, 0)
    for state, (kind, _) in places:
        counts[state] += next(replies) - (next(replies) if kind in EXPIRING else 0)
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
    stops takes its share with it (RQ drops it from its set of workers), where Kue
    counted every job's time since its queue began."""
    seconds = sum(worker.total_working_time for worker in Worker.all(connection=connection))
    return round(seconds * 1000)
