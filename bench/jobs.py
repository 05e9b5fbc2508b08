"""The job workloads of bench/run.py on this project's stack (job_queue on RQ), one
per process, as the peer's (bench/peer/kue_bench.js) are:

    python bench/jobs.py enqueue_serial <n>   queue n jobs, one after another
    python bench/jobs.py enqueue_burst <n>    queue n jobs at once (as 7_job_creator)
    python bench/jobs.py processor <c>        work the queue, c jobs at a time
    python bench/jobs.py end_to_end <n>       queue n jobs, wait for n completed events
    python bench/jobs.py enqueue_delayed <n>  queue n jobs at once, each due 1 s later
    python bench/jobs.py enqueue_waiting <n>  queue n jobs at once that each wait 20 ms
                                              (an `async def` job: asyncio.sleep)
    python bench/jobs.py retried_end_to_end <n>   queue n jobs at once that fail their
                                              first try (attempts 2, no backoff), wait
                                              for n completed events

A creator prints {"seconds": ...} (enqueue_delayed adds "due", when its jobs are due, in
seconds since the epoch); a processor works until SIGTERM. REDIS_URL says where.
"""

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules

from rq import Queue, get_current_job

from queuing.job_queue import JobCreator, work
from queuing.redis_connection import create_client

QUEUE = "bench"
JOB_FUNCTION = "bench.jobs.notify"
RETRIED_FUNCTION = "bench.jobs.fail_first_try"
WAITING_FUNCTION = "bench.jobs.wait_20ms"
WAIT_SECONDS = 0.02
DELAY_SECONDS = 1


def notify(data: dict) -> None:
    """The job: nothing, as the peer's handler does nothing but call done()."""


async def wait_20ms(data: dict) -> None:
    """The waiting jobs' job: it waits 20 ms, as a call to an SMS or mail gateway would;
    `async def`, so that a worker of many jobs at a time keeps them on one event loop."""
    await asyncio.sleep(WAIT_SECONDS)


def fail_first_try(data: dict) -> None:
    """The retried jobs' job: it fails its first try and does nothing on its second, as
    the peer's handler. RQ counts a job's retries down as it runs them again: on the
    first try of a job of 2 attempts, 1 is left."""
    if get_current_job().retries_left:
        raise RuntimeError("The first try fails")


def job_data(n: int) -> dict:
    return {"phoneNumber": "4153518780", "message": f"This is the code {n}"}


def creator() -> JobCreator:
    return JobCreator(Queue(QUEUE, connection=create_client(decode_responses=False)))


def enqueue_serial(count: int) -> float:
    jobs, start = creator(), time.perf_counter()
    for n in range(count):
        jobs.create(JOB_FUNCTION, job_data(n))
    return time.perf_counter() - start


def enqueue_burst(count: int) -> float:
    jobs, start = creator(), time.perf_counter()
    jobs.create_many(JOB_FUNCTION, [job_data(n) for n in range(count)])
    return time.perf_counter() - start


def enqueue_waiting(count: int) -> float:
    jobs, start = creator(), time.perf_counter()
    jobs.create_many(WAITING_FUNCTION, [job_data(n) for n in range(count)])
    return time.perf_counter() - start


def end_to_end(count: int) -> float:
    completed = []
    jobs = creator()
    jobs.handlers["completed"] = completed.append
    start = time.perf_counter()
    jobs.create_many(JOB_FUNCTION, [job_data(n) for n in range(count)])
    jobs.wait()
    assert len(completed) == count
    return time.perf_counter() - start


def enqueue_delayed(count: int) -> dict:
    """Queue the jobs at once, each delayed by DELAY_SECONDS; when they are due, by the
    wall clock (the jobs' start dates are compared with it): a second after the call."""
    jobs, called = creator(), time.time()
    start = time.perf_counter()
    jobs.create_many(JOB_FUNCTION, [job_data(n) for n in range(count)], delay=DELAY_SECONDS)
    return {"seconds": time.perf_counter() - start, "due": called + DELAY_SECONDS}


def retried_end_to_end(count: int) -> float:
    """Queue jobs that fail their first try (Kue's attempts: 2, no backoff), and wait for
    every one's completed event."""
    completed = []
    jobs = creator()
    jobs.handlers["completed"] = completed.append
    start = time.perf_counter()
    jobs.create_many(RETRIED_FUNCTION, [job_data(n) for n in range(count)], attempts=2)
    jobs.wait()
    assert len(completed) == count
    return time.perf_counter() - start


def processor(concurrency: int) -> None:
    work([QUEUE], create_client(decode_responses=False), workers=concurrency)


if __name__ == "__main__":
    workload, number = sys.argv[1], int(sys.argv[2])
    if workload == "processor":
        processor(number)
    else:
        measured = {
            "enqueue_serial": enqueue_serial,
            "enqueue_burst": enqueue_burst,
            "enqueue_waiting": enqueue_waiting,
            "end_to_end": end_to_end,
            "enqueue_delayed": enqueue_delayed,
            "retried_end_to_end": retried_end_to_end,
        }[workload](number)
        print(json.dumps(measured if isinstance(measured, dict) else {"seconds": measured}))
