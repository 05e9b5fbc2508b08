"""Jobs for the worker tests: `returns`, the plain job the tests queue; one that
raises; the ways a job can end that RQ's worker handles besides returning or raising an
Exception; and one that reports its own heartbeat."""

import time

from rq import Queue, Retry, get_current_job


def returns(data: dict) -> str:
    return data.get("value", "done")


def exits(data: dict) -> None:
    raise SystemExit(3)


def interrupted(data: dict) -> None:
    raise KeyboardInterrupt


def asks_to_be_retried(data: dict) -> Retry:
    return Retry(max=2)


def sleeps(data: dict) -> dict:
    """Sleeps `seconds`; returns how long Redis keeps its execution and worker alive as
    it starts (seconds, the least of them) and its execution's heartbeats (seconds since
    the epoch) as it starts and as it ends."""
    job = get_current_job()
    connection = job.connection
    (execution,) = connection.keys(f"rq:execution:{job.id}:*")
    run = execution.decode().removeprefix("rq:execution:")
    alive_for = min(
        connection.ttl(execution),
        connection.ttl(f"rq:worker:{job.worker_name}"),
        connection.zscore(f"rq:wip:{job.origin}", run) - time.time(),
    )
    first = float(connection.hget(execution, "last_heartbeat"))
    time.sleep(data["seconds"])
    last = float(connection.hget(execution, "last_heartbeat"))
    return {"alive_for": alive_for, "first_heartbeat": first, "last_heartbeat": last}


def fails(data: dict) -> None:
    raise ValueError("this job fails")


def heard_of_success(job, connection, result) -> None:
    """An on_success callback of the user's own: RQ's code runs the job."""


def gets_a_dependent(data: dict) -> str:
    """Queues a job that depends on this one, while this one runs; returns its id."""
    job = get_current_job()
    queue = Queue(job.origin, connection=job.connection)
    return queue.enqueue("tests.worker_jobs.returns", {}, depends_on=job.id).id
