"""Celery's side of the bench (workloads.py), with Redis as its broker and no result
backend (Celery's default): tasks queued with delay(), worked by `celery worker`,
`-c` at a time: in processes (its default pool) up to PREFORK_UP_TO at a time, in
threads above (50 or 200 processes are not what a user runs for jobs that wait)."""

import time

import stamps
from celery import Celery
from workloads import QUEUE, REDIS_URL, WAIT_SECONDS, exec_worker_command, job_data, main

PREFORK_UP_TO = 4
app = Celery("celery_bench", broker=REDIS_URL)
app.conf.task_default_queue = QUEUE


@app.task(name="notify")
def notify(data: dict) -> None:
    started = time.time()
    stamps.job_ended(started)


@app.task(name="wait_20ms")
def wait_20ms(data: dict) -> None:
    started = time.time()
    time.sleep(WAIT_SECONDS)
    stamps.job_ended(started)


def enqueue(name: str, count: int) -> None:
    task = {"notify": notify, "wait_20ms": wait_20ms}[name]
    for n in range(count):
        task.delay(job_data(n))


def processor(concurrency: int) -> None:
    pool = "prefork" if concurrency <= PREFORK_UP_TO else "threads"
    command = ["celery", "-A", "celery_bench", "worker", "--pool", pool, "-c", str(concurrency)]
    exec_worker_command(*command, "-Q", QUEUE, "--loglevel", "WARNING")


if __name__ == "__main__":
    main(enqueue, processor)
