"""Pause and resume a queue for every worker (BullMQ's `queue.pause()`, Kue's
`ctx.pause()` made queue-wide): jobs in hand finish, nothing new starts.

The flag is a key per queue, `job_queue:paused:<queue>`, shared by the queue's priority
levels. A JobWorker's step reads it in the same script that takes a job, so no job is
taken once the flag is set. RQ's own worker does not read it: for stock `rq worker`
processes, `rq suspend` (every queue) is RQ's way, and JobWorker honours it too.
"""

import functools

import redis
from rq import Queue

from queuing.job_queue.options import base_queue_name

PAUSED_KEY = "job_queue:paused:{queue}"


@functools.cache  # a worker asks for it at every step: queue names are few
def paused_key(queue_name: str) -> str:
    return PAUSED_KEY.format(queue=base_queue_name(queue_name))


def pause_queue(queue: Queue) -> None:
    """No worker takes a job of `queue` (or of its priority levels) until resumed."""
    queue.connection.set(paused_key(queue.name), 1)


def resume_queue(queue: Queue) -> None:
    queue.connection.delete(paused_key(queue.name))


def is_paused(queue: Queue) -> bool:
    return bool(queue.connection.exists(paused_key(queue.name)))


def paused_queues(connection: redis.Redis, queues: list[Queue]) -> set[str]:
    """The names of those of `queues` that are paused, in one round trip."""
    flags = connection.mget([paused_key(queue.name) for queue in queues])
    return {queue.name for queue, flag in zip(queues, flags, strict=True) if flag}
