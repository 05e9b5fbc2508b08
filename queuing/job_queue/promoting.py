"""Delayed jobs promoted to their queue when due (Kue's `promotion`), and at once on
request (BullMQ's `job.promote()`).

A delayed job is an RQ scheduled job: it waits in its queue's ScheduledJobRegistry, as
RQ's `enqueue_at` puts it, and `rq info` counts it there. RQ's scheduler moves such
jobs, from one worker that holds a lock, on whole seconds. The project's processors move
them with promote.lua instead, from every worker process, several times a second: the
move and its `promotion` event are one script, so a job is promoted once whoever does
it, and no worker need hold a lock. RQ's retries wait in the same registry and are
promoted the same way.
"""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import redis
from rq import Queue
from rq.job import Job

from queuing.job_queue.bookkeeping import rq_date, rq_key_formats
from queuing.job_queue.events import EVENTS_KEPT, events_key, log
from queuing.redis_connection import UNREACHABLE
from queuing.redis_scripts import LuaScript

PROMOTE = LuaScript.from_file(Path(__file__).with_name("promote.lua"))
PROMOTE_EVERY_SECONDS = 0.2
PROMOTE_AT_MOST = 1000  # jobs per queue and call: a call blocks Redis while it runs


def promote_due(queue: Queue, job_id: str = "") -> tuple[list[str], float | None]:
    """Move the due jobs of the queue's scheduled registry to the queue (or the one
    `job_id` names, due or not); the ids moved, and when the next one is due (seconds
    since the epoch; None: none waits)."""
    keys = {
        "scheduled": queue.scheduled_job_registry.key,
        "queue": queue.key,
        "queues": queue.redis_queues_keys,
        "events": events_key(queue.name),
    }
    at = time.time()
    args = {"now": repr(at), "enqueued_at": rq_date(datetime.fromtimestamp(at, UTC))}
    args |= {"limit": PROMOTE_AT_MOST}
    args |= {"job_key": rq_key_formats(queue.job_class)["job_key"]}
    args |= {"events_kept": EVENTS_KEPT, "job_id": job_id}
    promoted, next_due = PROMOTE.run(queue.connection, keys, args)
    return [value.decode() for value in promoted], float(next_due) if next_due else None


def promote_job(job: Job) -> bool:
    """Queue a delayed job now, as BullMQ's `job.promote()`; False if it is not waiting
    (promoted already, or not delayed)."""
    queue = Queue(job.origin, connection=job.connection, serializer=job.serializer)
    return bool(promote_due(queue, job.id)[0])


class Promoter:
    """A thread that promotes the due jobs of some queues, until stopped: when the next
    one is due, and at least every PROMOTE_EVERY_SECONDS (for jobs created meanwhile);
    `queues` is asked for them each time (a worker's priority levels change as jobs are
    created)."""

    def __init__(self, queues: Callable[[], list[Queue]], name: str) -> None:
        self._queues = queues
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"promoter of {name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join(5)

    def _run(self) -> None:
        wait = PROMOTE_EVERY_SECONDS
        while not self._stopped.wait(wait):
            wait = PROMOTE_EVERY_SECONDS
            try:
                for queue in self._queues():
                    _, next_due = promote_due(queue)
                    if next_due is not None:
                        wait = min(wait, max(next_due - time.time(), 0.001))
            except UNREACHABLE:  # the worker says so; the next round may get through
                pass
            except redis.RedisError:
                log.exception("Promoting delayed jobs")
