"""Dramatiq's side of the bench (workloads.py), on its Redis broker: actors sent with
send(), worked by `dramatiq dramatiq_bench --processes 1 --threads c` (its worker
command; its threads are how it runs several jobs at a time in a process)."""

import time

import dramatiq
import stamps
from dramatiq.brokers.redis import RedisBroker
from workloads import QUEUE, REDIS_URL, WAIT_SECONDS, exec_worker_command, job_data, main

dramatiq.set_broker(RedisBroker(url=REDIS_URL))


@dramatiq.actor(queue_name=QUEUE)
def notify(data: dict) -> None:
    started = time.time()
    stamps.job_ended(started)


@dramatiq.actor(queue_name=QUEUE)
def wait_20ms(data: dict) -> None:
    started = time.time()
    time.sleep(WAIT_SECONDS)
    stamps.job_ended(started)


def enqueue(name: str, count: int) -> None:
    actor = {"notify": notify, "wait_20ms": wait_20ms}[name]
    for n in range(count):
        actor.send(job_data(n))


def processor(concurrency: int) -> None:
    command = ["dramatiq", "dramatiq_bench", "--processes", "1", "--threads", str(concurrency)]
    exec_worker_command(*command, "--queues", QUEUE)


if __name__ == "__main__":
    main(enqueue, processor)
