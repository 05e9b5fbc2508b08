"""RQ's bookkeeping of a job's life, written in Lua: one round trip to queue jobs, one
to finish a job and take the next.

RQ keeps a job's state in Redis: its hash, the queue, the registries of started,
finished and failed jobs, the execution records, the worker's counters. RQ writes
them from Python, about 55 commands in 20 round trips per job, and spends some 2 ms of
CPU doing so: that caps a worker at a few hundred jobs a second. The scripts here write
the very same keys and fields (those of RQ 3.0.0, which requirements.txt pins; the test
tests/test_rq_bookkeeping.py compares them with RQ's own, key by key) in one round
trip. RQ's own code still builds what it stores (the job's hash, a result's fields),
and a job this path does not cover (dependencies, retries, repeats, rate limits,
webhooks, callbacks other than job_queue's) goes through RQ's worker as usual.

Keys of a job are derived in the scripts (a plain, non-cluster Redis is assumed).
"""

import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from rq import Queue
from rq.defaults import DEFAULT_FAILURE_TTL
from rq.exceptions import DequeueTimeout
from rq.job import Job
from rq.results import Result
from rq.serializers import PickleSerializer
from rq.utils import get_call_string, now

from queuing import rq_compat
from queuing.redis_scripts import LuaScript, NotConfirmed

# Queue jobs: one id each from the counter, the job's hash as RQ's Job.to_dict() makes
# it, the id pushed on the queue and a `created` event for its creator. Returns the
# first id and the stream position of its event. ARGV past these: the number of fields
# of each job's flat hash, then the hashes one after another.
ENQUEUE_KEYS = ("ids", "queue", "queues", "events")  # the counter, the queue, RQ's set of
# queues, the events stream
ENQUEUE_ARGV = ("events_kept", "count")
ENQUEUE = """
local n = tonumber(count)
local first = redis.call('INCRBY', ids, n) - n + 1
local at, first_event = REST_AT + n, nil
for j = 1, n do
  local id = tostring(first + j - 1)
  local length = tonumber(ARGV[REST_AT + j - 1])
  redis.call('HSET', 'rq:job:' .. id, unpack(ARGV, at, at + length - 1))
  at = at + length
  redis.call('RPUSH', queue, id)
  local event = redis.call('XADD', events, 'MAXLEN', '~', events_kept, '*',
    'job', id, 'event', 'created')
  first_event = first_event or event
end
redis.call('SADD', queues, queue)
return {first, first_event}
"""
ENQUEUE_SCRIPT = LuaScript(ENQUEUE_KEYS, ENQUEUE_ARGV, ENQUEUE)
# Jobs per script call: a call blocks Redis while it runs.
ENQUEUE_CHUNK = 500

# Finish the worker's last job, if any, then take the next one from the queue.
# Finishing writes what RQ's handle_job_success / handle_job_failure and
# cleanup_execution write; taking writes what its prepare_execution and
# prepare_job_execution write, for a job the fast path covers (else the job is left in
# the intermediate list for RQ's worker code, which takes it from there).
# Its KEYS and ARGV, by name (redis_scripts.LuaScript); ARGV from REST_AT on are the
# fields of the finished job's result, as RQ's Result stores them.
STEP_KEYS = (
    "worker",  # the worker's hash
    "worker_executions",  # the set of its executions
    "queue",  # the queue to take from ('' with nothing to take)
    "intermediate",  # that queue's intermediate list
    "ended_events",  # the stream where the finished job's event goes
)
STEP_ARGV = (
    # 1. the last job's outcome (all '' but ttl when there is none)
    "outcome",  # 'finished', 'failed', or ''
    "ended_id",  # its job's id
    "ended_execution",  # its execution's id
    "ended_origin",  # its queue's name
    "ended_at",  # when it ended, as RQ writes dates
    "ended_at_seconds",  # the same, whole seconds since the epoch
    "working_time",  # seconds it ran, for the worker's total
    "ttl",  # of its result when finished, of its failed-registry entry when failed
    "failure_ttl",  # its job's own failure_ttl ('' for RQ's default)
    "record_failure",  # '1': a failed job's result and failed-registry entry are written,
    # as RQ's default exception handler does; '' when the worker disables that handler
    "event",  # the event for its creator: 'completed', 'failed', or '' (no callbacks)
    "error",  # the error of a failed one
    # 2. taking the next job
    "take",  # 'pop': the next on the queue; 'id': the one take_id names; '': none
    "take_id",
    "fast_path",  # '1': a job the step can do all of is started here; '': every job is
    # left to RQ's code (a worker whose RQ hooks were changed: JobWorker._may_take_fast_path)
    "one_queue",  # '1': pop into the intermediate list (RQ's dequeue for a worker of one
    # queue, whose job RQ's own code then takes out of it); '': a plain LPOP (several queues)
    "heartbeat_margin",  # seconds past its timeout before a job counts as abandoned
    "no_timeout_ttl",  # the heartbeat TTL of a job without a timeout (-1)
    "execution",  # the new execution's id
    "now",  # seconds since the epoch
    "started_at",  # the same, as RQ writes dates
    "default_timeout",  # the timeout of a job without its own
    "events_kept",  # the events stream's approximate length
    "queue_name",
    "worker_name",
    "success_callback",  # the callbacks whose effect is the step's event (job_queue's)
    "failure_callback",
)
STEP = """
local function expire_or_persist(key, ttl)
  if ttl == -1 then redis.call('PERSIST', key) else redis.call('EXPIRE', key, ttl) end
end

-- 1. Finish the last job.
local job, run = 'rq:job:' .. ended_id, ended_id .. ':' .. ended_execution
if outcome ~= '' then
  redis.call('SREM', worker_executions, run)
  -- A job ends once: if it is no longer started by this worker (its worker was cut
  -- off so long that it was called abandoned and failed), the late outcome is dropped.
  local current = redis.call('HMGET', job, 'status', 'worker_name')
  if current[1] ~= 'started' or current[2] ~= worker_name then outcome = '' end
end
if outcome ~= '' then
  local ended_on, ttl = tonumber(ended_at_seconds), tonumber(ttl)
  local result = 'rq:results:' .. ended_id
  -- A failed job's result and failed-registry entry are what RQ's default exception
  -- handler writes (Job._handle_failure); without it, RQ saves only the status.
  local recorded = outcome == 'finished' or record_failure ~= ''
  if recorded then
    redis.call('HSET', job, 'last_heartbeat', ended_at, 'status', outcome, 'ended_at', ended_at)
  else
    redis.call('HSET', job, 'last_heartbeat', ended_at, 'status', outcome)
  end
  redis.call('DEL', 'rq:execution:' .. run)
  redis.call('ZREM', 'rq:wip:' .. ended_origin, run)
  redis.call('ZREM', 'rq:executions:' .. ended_id, ended_execution)
  if recorded then redis.call('XADD', result, 'MAXLEN', '~', 10, '*', unpack(ARGV, REST_AT)) end
  if outcome == 'finished' then
    redis.call('HINCRBY', worker, 'successful_job_count', 1)
    expire_or_persist(result, ttl)
    if ttl == -1 then
      redis.call('ZADD', 'rq:finished:' .. ended_origin, '+inf', ended_id)
    else
      redis.call('ZADD', 'rq:finished:' .. ended_origin, ttl < 0 and ttl or ended_on + ttl,
        ended_id)
    end
  else
    redis.call('HINCRBY', worker, 'failed_job_count', 1)
    if recorded then
      if failure_ttl ~= '' then expire_or_persist(result, tonumber(failure_ttl)) end
      redis.call('ZADD', 'rq:failed:' .. ended_origin, ttl < 0 and ttl or ended_on + ttl,
        ended_id)
    end
  end
  redis.call('HINCRBYFLOAT', worker, 'total_working_time', working_time)
  if recorded and ttl > 0 then
    redis.call('EXPIRE', job, ttl)
    redis.call('EXPIRE', job .. ':dependents', ttl)
    redis.call('EXPIRE', 'rq:job::' .. ended_id .. ':dependencies', ttl)
  end
  -- Kept for 0 seconds (result_ttl=0, failure_ttl=0): RQ deletes the job at once
  -- (Job.cleanup(0) -> Job.delete), its result and executions with it; a failed one stays
  -- named in the failed registry. One that has dependents is deleted once they are moved
  -- on (JobWorker._step), as RQ does.
  local dependents = redis.call('SCARD', job .. ':dependents')
  if recorded and ttl == 0 and dependents == 0 then
    redis.call('DEL', job, job .. ':dependents', 'rq:job::' .. ended_id .. ':dependencies',
      result, 'rq:executions:' .. ended_id)
    if outcome == 'finished' then redis.call('ZREM', 'rq:finished:' .. ended_origin, ended_id) end
  end
  if event == 'completed' then
    redis.call('XADD', ended_events, 'MAXLEN', '~', events_kept, '*',
      'job', ended_id, 'event', 'completed')
  elseif event == 'failed' then
    redis.call('XADD', ended_events, 'MAXLEN', '~', events_kept, '*',
      'job', ended_id, 'event', 'failed', 'error', error)
  end
  if dependents > 0 then return {'dependents'} end
end

-- 2. Take the next job: the one named, or the next on the queue.
if take == '' then return nil end
local id = take_id
if take == 'pop' then
  if one_queue ~= '' then
    id = redis.call('LMOVE', queue, intermediate, 'LEFT', 'RIGHT')
  else
    id = redis.call('LPOP', queue)
  end
end
if not id then
  redis.call('HSET', worker, 'state', 'idle')
  return nil
end
job = 'rq:job:' .. id
local f = redis.call('HMGET', job, 'status', 'dependency_ids', 'retries_left', 'repeats_left',
  'rate_limit_key', 'group_id', 'webhooks', 'success_callback_name', 'failure_callback_name',
  'stopped_callback_name', 'timeout')
if not f[1] then
  redis.call('LREM', intermediate, 1, id)  -- deleted meanwhile: RQ skips it too
  return {'gone'}
end
local covered = fast_path ~= '' and f[1] == 'queued' and not f[2] and not f[3] and not f[4]
  and (f[5] or '') == '' and (f[6] or '') == '' and not f[7]
  and (f[8] == '' or f[8] == success_callback)
  and (f[9] == '' or f[9] == failure_callback) and (f[10] or '') == ''
  and redis.call('SCARD', job .. ':dependents') == 0
if not covered then return {'rq', id, redis.call('HGETALL', job)} end

-- A job without a timeout (-1) gets RQ's SimpleWorker's TTL; the worker's heartbeat
-- thread renews it while the job runs (job_queue.JobWorker).
local timeout = tonumber(f[11] or default_timeout)
local ttl = timeout == -1 and tonumber(no_timeout_ttl) or timeout + tonumber(heartbeat_margin)
run = id .. ':' .. execution
redis.call('HSET', 'rq:execution:' .. run, 'id', execution, 'job_id', id,
  'created_at', now, 'last_heartbeat', now, 'worker_name', worker_name)
redis.call('EXPIRE', 'rq:execution:' .. run, ttl)
redis.call('ZADD', 'rq:executions:' .. id, math.floor(tonumber(now)) + ttl + 60, execution)
redis.call('EXPIRE', 'rq:executions:' .. id, ttl + 60)
redis.call('ZADD', 'rq:wip:' .. queue_name, math.floor(tonumber(now)) + ttl, run)
redis.call('SADD', worker_executions, run)
redis.call('HSET', worker, 'state', 'busy', 'last_heartbeat', started_at)
redis.call('EXPIRE', worker, ttl)
redis.call('EXPIRE', worker_executions, ttl)
redis.call('HSET', job, 'last_heartbeat', started_at, 'status', 'started',
  'started_at', started_at, 'worker_name', worker_name)
redis.call('PERSIST', job)
redis.call('LREM', intermediate, 1, id)
return {'fast', id, redis.call('HGETALL', job)}
"""


# RQ's maintain_heartbeats (rq/worker/base.py), for a job that runs long: renew what says
# the job's execution and its worker are alive. In one step, and only while that execution
# is still there: the worker's step may have ended the job meanwhile, and renewing then
# would bring its execution back.
HEARTBEAT = LuaScript(
    keys=("worker", "worker_executions", "execution", "wip", "executions", "job"),
    argv=("run", "execution_id", "now", "last_heartbeat", "ttl", "worker_ttl"),
    body="""
if redis.call('EXISTS', execution) == 0 then return 0 end
local at, ttl = math.floor(tonumber(now)), tonumber(ttl)
redis.call('HSET', worker, 'last_heartbeat', last_heartbeat)
redis.call('EXPIRE', worker, worker_ttl)
redis.call('EXPIRE', worker_executions, worker_ttl)
redis.call('HSET', execution, 'last_heartbeat', now)
redis.call('EXPIRE', execution, ttl)
redis.call('ZADD', wip, 'XX', at + ttl, run)
redis.call('ZADD', executions, 'XX', at + ttl + 60, execution_id)
redis.call('EXPIRE', executions, ttl + 60)
if redis.call('EXISTS', job) == 1 then redis.call('HSET', job, 'last_heartbeat', last_heartbeat) end
return 1
""",
)


def renew_heartbeat(
    connection: redis.Redis, worker_key: str, job: Job, execution_id: str, ttl: int, worker_ttl: int
) -> bool:
    """Renew the heartbeat of `job`'s execution `execution_id` and of its worker for `ttl`
    and `worker_ttl` seconds; False if that execution has ended."""
    run = f"{job.id}:{execution_id}"
    keys = {
        "worker": worker_key,
        "worker_executions": f"{worker_key}:executions",
        "execution": f"rq:execution:{run}",
        "wip": f"rq:wip:{job.origin}",
        "executions": f"rq:executions:{job.id}",
        "job": job.key,
    }
    at = now()
    args = {"run": run, "execution_id": execution_id, "now": repr(at.timestamp())}
    args |= {"last_heartbeat": rq_date(at), "ttl": ttl, "worker_ttl": worker_ttl}
    return HEARTBEAT.run(connection, keys, args) == 1


class JobTemplate:
    """Jobs running `func(data)` on one queue, as RQ's Queue.create_job builds them and
    enqueue_job stores them, at a third of the cost: RQ builds one job, and each job's
    hash is that one's with its own dates, data and description (RQ's Job.create and
    to_dict cost some 80 µs a job, in a request's path). tests/test_rq_bookkeeping.py
    compares what it stores with RQ's own."""

    def __init__(self, queue: Queue, func: Any, timeout: int, **options: Any) -> None:
        """`options`: Job.create's (callbacks, result_ttl, failure_ttl...)."""
        sample = Job.create(  # as queue.create_job builds it
            func,
            args=(None,),
            connection=queue.connection,
            timeout=timeout,
            origin=queue.name,
            serializer=_serializer(queue.serializer),
            **options,
        )
        rq_compat.prepare_for_queue(queue, sample)  # origin, enqueued_at, status: RQ's own
        self._stored = sample.to_dict()
        self._func_name = sample.func_name
        self._serializer = sample.serializer
        self._timeout = sample.timeout
        self._origin = queue.name

    def build(self, connection: redis.Redis, data: Any) -> tuple[Job, list[Any]]:
        """A job running `func(data)`, and its hash as RQ stores it, flat."""
        at = now()
        at_text = rq_date(at)
        call = (self._func_name, None, (data,), {})
        pickled = self._serializer.dumps(call)
        description = get_call_string(self._func_name, (data,), {}, max_length=75)
        fields = self._stored | {"created_at": at_text, "enqueued_at": at_text}
        fields |= {"data": zlib.compress(pickled), "description": description}
        job = Job(connection=connection, serializer=_serializer(self._serializer))
        job.data = pickled
        job.origin, job.timeout, job.description = self._origin, self._timeout, description
        job.created_at = job.enqueued_at = at
        return job, [item for pair in fields.items() for item in pair]


def enqueue(
    queue: Queue,
    jobs: Sequence[Job],
    hashes: Sequence[list[Any]],
    ids_key: str,
    events_key: str,
    kept: int,
) -> str:
    """Queue `jobs` with their `hashes` (as a JobTemplate builds them), a round trip per
    500, giving each its id from the counter (the hash RQ stores holds no id, so the one
    a job was built with is simply replaced). Returns the stream position of the first
    job's event.

    Confirmed once the replicas the connection needs have them (redis_connection); else
    NotConfirmed carries every job queued by this call, for the caller to undo."""
    keys = {"ids": ids_key, "queue": queue.key, "queues": queue.redis_queues_keys}
    keys["events"] = events_key
    first_event = None
    for start in range(0, len(jobs), ENQUEUE_CHUNK):
        chunk = jobs[start : start + ENQUEUE_CHUNK]
        chunk_hashes = hashes[start : start + ENQUEUE_CHUNK]
        lengths_then_hashes = [len(flat) for flat in chunk_hashes]
        lengths_then_hashes += [item for flat in chunk_hashes for item in flat]
        args = {"events_kept": kept, "count": len(chunk)}
        try:
            reply = ENQUEUE_SCRIPT.run(
                queue.connection, keys, args, lengths_then_hashes, confirm=True
            )
        except NotConfirmed as unconfirmed:
            _number(chunk, unconfirmed.reply[0])
            raise NotConfirmed(jobs[: start + len(chunk)]) from None  # all of them, to undo
        first_id, event = reply
        _number(chunk, first_id)
        first_event = first_event or event.decode()
    return first_event


def _number(jobs: Sequence[Job], first_id: int) -> None:
    for offset, job in enumerate(jobs):
        job.id = str(first_id + offset)


class _Job(Job):
    """RQ's Job, restored with a faster reading of its dates: RQ parses each with
    strptime, some 10 µs a date, five a job."""

    DATES = (b"created_at", b"enqueued_at", b"started_at", b"ended_at", b"last_heartbeat")

    def restore(self, raw_data: dict) -> None:
        dates = {field: raw_data.pop(field, None) for field in self.DATES}
        super().restore(raw_data)
        for field, value in dates.items():
            setattr(self, field.decode(), _parse_utc(value) if value else None)
        self.created_at = self.created_at or now()  # as RQ: a job has a creation date


def _serializer(serializer: Any) -> Any:
    """A serializer as an argument for RQ: None for its default, which RQ then takes
    without checking it against its protocol (some 15 µs a check)."""
    return None if serializer is PickleSerializer else serializer


def rq_date(at: datetime) -> str:
    """A date as RQ writes it (rq.utils.utcformat: the date's own clock time, and "Z"),
    without its strftime, the slower of the two."""
    return at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _parse_utc(value: bytes) -> datetime:
    # RQ writes "2026-11-29T09:01:54.612841Z"; Python 3.10 reads no "Z".
    return datetime.fromisoformat(value.decode()[:-1] + "+00:00")


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
    error: str = ""
    # A failed job's result and failed-registry entry are written (RQ's default exception
    # handler); False for a worker that disables it.
    recorded: bool = True

    @classmethod
    def finished_with(
        cls, claimed: Claimed, worker_name: str, return_value: Any, ttl: int, event: str
    ) -> "Outcome":
        ended_at = now()
        fields = _result_fields(claimed, worker_name, ended_at, return_value=return_value)
        return cls(claimed.job, claimed.execution_id, True, ended_at, ttl, fields, event)

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


def _result_fields(claimed: Claimed, worker_name: str, ended_at: datetime, **outcome: Any) -> dict:
    kind = Result.Type.FAILED if "exc_string" in outcome else Result.Type.SUCCESSFUL
    result = Result(
        claimed.job.id,
        kind,
        claimed.job.connection,
        worker_name=worker_name,
        serializer=_serializer(claimed.job.serializer),
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
    heartbeat_margin: int  # seconds past its timeout before a job counts as abandoned
    no_timeout_ttl: int  # the heartbeat TTL of a job without a timeout (-1)
    one_queue: bool  # the worker works one queue: RQ then pops into its intermediate list
    fast_path: bool  # False: every job is left to RQ's own code
    events_kept: int  # the events streams' approximate length
    events_key: Callable[[str], str]  # a queue's name -> its events stream
    success_callback: str  # the callbacks whose effect is the step's own event
    failure_callback: str


class JobSteps:
    """The steps of one worker: finish its last job and take the next, in one call.

    The calls go over a connection of their own, taken from the client's pool for as
    long as the worker lives: redis-py's client adds some 70 µs to each command, half
    the cost of a trivial job.
    """

    SCRIPT = LuaScript(STEP_KEYS, STEP_ARGV, STEP)

    def __init__(
        self, connection: redis.Redis, worker_name: str, worker_key: str, settings: StepSettings
    ) -> None:
        self.connection = connection
        self.worker_key = worker_key
        self.settings = settings
        self._own_connection = connection.connection_pool.get_connection()
        self._worker_args = {  # the same for each of this worker's steps
            "fast_path": "1" if settings.fast_path else "",
            "one_queue": "1" if settings.one_queue else "",
            "heartbeat_margin": settings.heartbeat_margin,
            "no_timeout_ttl": settings.no_timeout_ttl,
            "default_timeout": settings.default_timeout,
            "events_kept": settings.events_kept,
            "worker_name": worker_name,
            "success_callback": settings.success_callback,
            "failure_callback": settings.failure_callback,
        }

    def close(self) -> None:
        self.connection.connection_pool.release(self._own_connection)

    def step(
        self, outcome: Outcome | None, queue: Queue | None, job_id: str = ""
    ) -> tuple[str, Claimed | None]:
        """Write `outcome` (if any), then take a job from `queue` (if given): the one
        `job_id` names, already in the intermediate list, else the next one.

        Returns ("fast", Claimed) for a job this path started, ("rq", Claimed) for one
        left to RQ's worker code, ("dependents", None) when the finished job has
        dependents to enqueue (nothing taken then), ("gone", None) for a job deleted
        meanwhile, ("none", None) when there was nothing to take.
        """
        execution_id = uuid.uuid4().hex
        started_at = now()
        settings = self.settings
        keys = {
            "worker": self.worker_key,
            "worker_executions": f"{self.worker_key}:executions",
            "queue": queue.key if queue else "",
            "intermediate": queue.intermediate_queue_key if queue else "",
            "ended_events": settings.events_key(outcome.job.origin) if outcome else "",
        }
        args = {
            **_outcome_args(outcome),
            **self._worker_args,
            "take": "" if queue is None else "id" if job_id else "pop",
            "take_id": job_id,
            "execution": execution_id,
            "now": repr(started_at.timestamp()),
            "started_at": rq_date(started_at),
            "queue_name": queue.name if queue else "",
        }
        result_fields = outcome.result_fields.items() if outcome else ()
        rest = [item for pair in result_fields for item in pair]
        try:
            reply = self.SCRIPT.run_on(self._own_connection, keys, args, rest)
        except redis.ResponseError:
            raise
        except BaseException:
            # Cut off mid-call (a cold stop's SystemExit): a reply may be on its way, which
            # the next call would read as its own. It reconnects instead.
            self._own_connection.disconnect()
            raise
        if not reply:
            return "none", None
        kind = reply[0].decode()
        if kind in ("dependents", "gone"):
            return kind, None
        job = _Job(
            reply[1].decode(), connection=self.connection, serializer=_serializer(queue.serializer)
        )
        flat = reply[2]
        job.restore(dict(zip(flat[::2], flat[1::2], strict=True)))
        return kind, Claimed(job, kind == "fast", execution_id, started_at)


def _outcome_args(outcome: Outcome | None) -> dict[str, Any]:
    """STEP's arguments about the last job's outcome."""
    if outcome is None:
        names = STEP_ARGV[: STEP_ARGV.index("error") + 1]
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
        "error": outcome.error,
    }
