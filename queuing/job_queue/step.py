"""A worker's step, in one round trip (step.lua): finish its last job, writing what RQ
writes when a job ends, and take the next, writing what RQ writes when a job starts;
and the heartbeat of a job that runs long (heartbeat.lua)."""

import calendar
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from rq import Queue
from rq.defaults import DEFAULT_FAILURE_TTL
from rq.exceptions import DequeueTimeout
from rq.job import Job
from rq.results import Result
from rq.utils import now

from queuing import rq_compat
from queuing.job_queue.bookkeeping import RestoredJob, rq_date, rq_key_formats, rq_serializer
from queuing.redis_scripts import LuaScript

HEARTBEAT = LuaScript.from_file(Path(__file__).with_name("heartbeat.lua"))


def renew_heartbeat(
    connection: redis.Redis, worker_key: str, job: Job, execution_id: str, ttl: int, worker_ttl: int
) -> bool:
    """Renew the heartbeat of `job`'s execution `execution_id` and of its worker for `ttl`
    and `worker_ttl` seconds; False if that execution has ended."""
    run = f"{job.id}:{execution_id}"
    rq_keys = rq_key_formats(type(job))
    keys = {
        "worker": worker_key,
        "worker_executions": f"{worker_key}:executions",
        "execution": rq_keys["execution_key"] % run,
        "wip": rq_keys["started_key"] % job.origin,
        "executions": rq_keys["executions_key"] % job.id,
        "job": job.key,
    }
    at = now()
    args = {"run": run, "execution_id": execution_id, "now": repr(at.timestamp())}
    args |= {"last_heartbeat": rq_date(at), "ttl": ttl, "worker_ttl": worker_ttl}
    return HEARTBEAT.run(connection, keys, args) == 1


@dataclass
class Claimed:
    """A job a worker has taken: one this path `covers` is started already."""

    job: Job
    covered: bool
    execution_id: str
    started_at: datetime  # when its execution began


@dataclass
class Outcome:
    """How a worker's job ended, to be written with its next step."""

    job: Job
    execution_id: str
    finished: bool  # else failed
    ended_at: datetime
    ttl: int  # of the result when finished, of the failed registry's entry when failed
    result_fields: dict  # what RQ's Result stores
    event: str = ""  # job_queue's event for the creator ("" for a job without callbacks)
    detail: str = ""  # with the event: a failed job's error, a completed one's result (JSON)
    # A failed job's result and failed-registry entry are written (RQ's default exception
    # handler); False for a worker that disables it.
    recorded: bool = True
    # A failed try of a job with retries left (RQ's Job.retry): 'back' or 'front' to
    # queue it again at that end of its queue, 'at' to schedule it at retry_at (whole
    # seconds since the epoch); '' for an outcome that is not a retry.
    retry: str = ""
    retry_at: int = 0
    attempt: int = 0  # attempts made, for the `failed attempt` event
    meta: bytes = b""  # the job's meta as RQ's job.save() writes it on a retry (b"": none)

    @classmethod
    def finished_with(
        cls,
        claimed: Claimed,
        worker_name: str,
        return_value: Any,
        ttl: int,
        event: str,
        result: str = "",
    ) -> "Outcome":
        ended_at = now()
        fields = _result_fields(claimed, worker_name, ended_at, return_value=return_value)
        return cls(claimed.job, claimed.execution_id, True, ended_at, ttl, fields, event, result)

    @classmethod
    def failed_with(
        cls,
        claimed: Claimed,
        worker_name: str,
        exc_string: str,
        event: str,
        error: str,
        recorded: bool = True,
    ) -> "Outcome":
        ended_at = now()
        ttl = claimed.job.failure_ttl
        ttl = DEFAULT_FAILURE_TTL if ttl is None else ttl
        fields = _result_fields(claimed, worker_name, ended_at, exc_string=exc_string)
        job, execution_id = claimed.job, claimed.execution_id
        return cls(job, execution_id, False, ended_at, ttl, fields, event, error, recorded)

    @classmethod
    def retried_with(
        cls, claimed: Claimed, retry_interval: float, event: str, error: str, attempt: int
    ) -> "Outcome":
        """A failed try of a job with retries left, queued again or scheduled as RQ's
        Job.retry does: no result, no failed-registry entry (handle_job_failure runs no
        exception handler for it)."""
        job = claimed.job
        ended_at = now()
        retry, retry_at = ("front" if job.enqueue_at_front_on_retry else "back"), 0
        if retry_interval:  # ScheduledJobRegistry.schedule's score: whole seconds, UTC
            retry = "at"
            due = ended_at + timedelta(seconds=retry_interval)
            retry_at = calendar.timegm(due.utctimetuple())
        meta = rq_compat.serialized_meta(job) if job.meta else b""  # what to_dict() holds
        return cls(
            job,
            claimed.execution_id,
            False,
            ended_at,
            0,
            {},
            event,
            error,
            recorded=False,
            retry=retry,
            retry_at=retry_at,
            attempt=attempt,
            meta=meta,
        )


def _result_fields(claimed: Claimed, worker_name: str, ended_at: datetime, **outcome: Any) -> dict:
    kind = Result.Type.FAILED if "exc_string" in outcome else Result.Type.SUCCESSFUL
    result = Result(
        claimed.job.id,
        kind,
        claimed.job.connection,
        worker_name=worker_name,
        serializer=rq_serializer(claimed.job.serializer),
        execution_id=claimed.execution_id,
        execution_started_at=claimed.started_at,
        execution_ended_at=ended_at,
        **outcome,
    )
    return result.serialize()


def wait_for_job_id(
    queues: Sequence[Queue], timeout: int, connection: redis.Redis
) -> tuple[Queue, str] | None:
    """Block up to `timeout` seconds for a job on the queues, as RQ's worker does (one
    queue: moved to its intermediate list, as RQ does)."""
    try:
        if len(queues) == 1:
            _, job_id = Queue.lmove(connection, queues[0].key, timeout)
            return queues[0], job_id.decode()
        queue_key, job_id = Queue.lpop([queue.key for queue in queues], timeout, connection)
    except DequeueTimeout:
        return None
    queue_key = queue_key.decode()
    return next(queue for queue in queues if queue.key == queue_key), job_id.decode()


@dataclass(frozen=True)
class StepSettings:
    """What a worker's steps need to know besides the job: from job_queue and the worker."""

    default_timeout: int  # of a job without its own
    # Seconds past its timeout, or past the next renewal, before a job counts as abandoned.
    heartbeat_margin: int
    no_timeout_ttl: int  # the worker's TTL while it runs a job without a timeout (-1)
    one_queue: bool  # the worker works one queue: RQ then pops into its intermediate list
    fast_path: bool  # False: every job is left to RQ's own code
    events_kept: int  # the events streams' approximate length
    events_key: Callable[[str], str]  # a queue's name -> its events stream
    paused_key: Callable[[str], str]  # a queue's name -> its pause flag
    # The names of the callbacks whose effect is the step's own event (job_queue's).
    success_callbacks: tuple[str, ...]
    failure_callbacks: tuple[str, ...]
    monitoring_interval: int = 30  # seconds between two renewals of the heartbeat thread
    job_class: type[Job] = Job  # the worker's: its keys are the ones the step writes
    # The worker's: RQ reads a job it takes with it, whatever the queue's (dequeue_any).
    serializer: Any = None


class JobSteps:
    """The steps of one worker: finish its last job and take the next, in one call.

    The calls go over a connection of their own, taken from the client's pool for as
    long as the worker lives: redis-py's client adds some 70 µs to each command, half
    the cost of a trivial job.
    """

    SCRIPT = LuaScript.from_file(Path(__file__).with_name("step.lua"))

    def __init__(
        self, connection: redis.Redis, worker_name: str, worker_key: str, settings: StepSettings
    ) -> None:
        self.connection = connection
        self.worker_key = worker_key
        self.settings = settings
        self._own_connection = connection.connection_pool.get_connection()
        self.worker_args = {  # the same for each of this worker's steps
            "fast_path": "1" if settings.fast_path else "",
            "one_queue": "1" if settings.one_queue else "",
            "heartbeat_margin": settings.heartbeat_margin,
            "no_timeout_ttl": settings.no_timeout_ttl,
            "monitoring_interval": settings.monitoring_interval,
            "default_timeout": settings.default_timeout,
            "events_kept": settings.events_kept,
            "worker_name": worker_name,
            "success_callbacks": " ".join(settings.success_callbacks),
            "failure_callbacks": " ".join(settings.failure_callbacks),
            **rq_key_formats(settings.job_class),
            "all_queues": Queue.redis_queues_keys,
        }

    def close(self) -> None:
        self.connection.connection_pool.release(self._own_connection)

    def disconnect(self) -> None:
        """Close its connection: it connects again on the next step."""
        self._own_connection.disconnect()

    def step(
        self, outcome: Outcome | None, queue: Queue | None, job_id: str = ""
    ) -> tuple[str, Claimed | None]:
        """Write `outcome` (if any), then take a job from `queue` (if given): the one
        `job_id` names, already in the intermediate list, else the next one.

        Returns ("fast", Claimed) for a job this path started, ("rq", Claimed) for one
        left to RQ's worker code, ("dependents", None) when the finished job has
        dependents to enqueue (nothing taken then), ("gone", None) for a job deleted
        meanwhile, ("paused", None) for a paused queue (a job named is put back at its
        head), ("none", None) when there was nothing to take.
        """
        return self.steps([(outcome, queue, job_id)])[0]

    def steps(
        self, calls: Sequence[tuple[Outcome | None, Queue | None, str]]
    ) -> list[tuple[str, Claimed | None]]:
        """Several steps (each `step`'s arguments) in one round trip, run by Redis one
        after the other in this order; each one's answer as `step`'s."""
        started = [(uuid.uuid4().hex, now()) for _ in calls]
        commands = [self._command(*call, *ids) for call, ids in zip(calls, started, strict=True)]
        try:
            replies = self.SCRIPT.run_many_on(self._own_connection, commands)
        except BaseException:
            # Cut off mid-call (a cold stop's SystemExit): a reply may be on its way, which
            # the next call would read as its own. It reconnects instead.
            self._own_connection.disconnect()
            raise
        if errors := [reply for reply in replies if isinstance(reply, redis.ResponseError)]:
            raise errors[0]
        return [self._answer(reply, *ids) for reply, ids in zip(replies, started, strict=True)]

    def _command(
        self,
        outcome: Outcome | None,
        queue: Queue | None,
        job_id: str,
        execution_id: str,
        started_at: datetime,
    ) -> tuple:
        settings = self.settings
        keys = {
            "worker": self.worker_key,
            "worker_executions": f"{self.worker_key}:executions",
            "queue": queue.key if queue else "",
            "intermediate": queue.intermediate_queue_key if queue else "",
            "ended_events": settings.events_key(outcome.job.origin) if outcome else "",
            "taken_events": settings.events_key(queue.name) if queue else "",
            "paused": settings.paused_key(queue.name) if queue else "",
        }
        args = {
            **_outcome_args(outcome),
            **self.worker_args,
            "take": "" if queue is None else "id" if job_id else "pop",
            "take_id": job_id,
            "execution": execution_id,
            "now": repr(started_at.timestamp()),
            "started_at": rq_date(started_at),
            "queue_name": queue.name if queue else "",
        }
        result_fields = outcome.result_fields.items() if outcome else ()
        rest = [item for pair in result_fields for item in pair]
        return self.SCRIPT.command(keys, args, rest)

    def _answer(
        self, reply: Any, execution_id: str, started_at: datetime
    ) -> tuple[str, Claimed | None]:
        if not reply:
            return "none", None
        kind = reply[0].decode()
        if kind in ("dependents", "gone", "paused"):
            return kind, None
        job = RestoredJob(
            reply[1].decode(),
            connection=self.connection,
            serializer=rq_serializer(self.settings.serializer),
        )
        flat = reply[2]
        job.restore(dict(zip(flat[::2], flat[1::2], strict=True)))
        return kind, Claimed(job, kind == "fast", execution_id, started_at)


def _outcome_args(outcome: Outcome | None) -> dict[str, Any]:
    """STEP's arguments about the last job's outcome."""
    if outcome is None:
        argv = JobSteps.SCRIPT.argv
        names = argv[: argv.index("ended_meta") + 1]
        return {**dict.fromkeys(names, ""), "ttl": 0}
    job = outcome.job
    working = (outcome.ended_at - job.started_at).total_seconds() if job.started_at else 0
    return {
        "outcome": "finished" if outcome.finished else "failed",
        "ended_id": job.id,
        "ended_execution": outcome.execution_id,
        "ended_origin": job.origin,
        "ended_at": rq_date(outcome.ended_at),
        "ended_at_seconds": int(outcome.ended_at.timestamp()),
        "working_time": working,
        "ttl": outcome.ttl,
        "failure_ttl": "" if outcome.finished or job.failure_ttl is None else job.failure_ttl,
        "record_failure": "1" if outcome.recorded else "",
        "event": outcome.event,
        "detail": outcome.detail,
        "retry": outcome.retry,
        "retry_at": outcome.retry_at,
        "attempt": outcome.attempt,
        "ended_meta": outcome.meta,
    }
