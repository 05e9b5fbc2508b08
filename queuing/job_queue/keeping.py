"""BullMQ's `removeOnComplete: {count: n}` (and removeOnFail): once a job with that
option has ended, its queue's finished (or failed) registry keeps its last n jobs, the
others deleted as RQ deletes a job (keep_last.lua). RQ has no count of its own: its
result_ttl and failure_ttl are ages, which the option's `age` is."""

from pathlib import Path

from rq.job import Job

from queuing.job_queue.bookkeeping import rq_key_formats
from queuing.job_queue.options import kept_count
from queuing.redis_scripts import LuaScript

KEEP_LAST = LuaScript.from_file(Path(__file__).with_name("keep_last.lua"))


def keep_last(job: Job, finished: bool, ending_now: bool = False) -> int:
    """Trim the registry `job` ended in to the count its removal option asks for (none:
    nothing done); how many were deleted. `ending_now`: RQ's own path, whose callbacks
    run before RQ adds the job to the registry, so that one place is left for it."""
    count = kept_count(job.meta.get("options", {}), finished)
    if count is None:
        return 0
    if ending_now:
        count = max(count - 1, 0)
    formats = rq_key_formats(type(job))
    registry = formats["finished_key" if finished else "failed_key"] % job.origin
    names = ("job_key", "result_key", "executions_key", "dependents_key", "dependencies_key")
    args = {"count": count, **{name: formats[name] for name in names}}
    return KEEP_LAST.run(job.connection, {"registry": registry}, args)
