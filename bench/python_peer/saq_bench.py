"""SAQ's side of the bench (workloads.py): async def jobs, queued with Queue.enqueue,
worked by SAQ's Worker with `concurrency` at a time (what `saq saq_bench.settings` runs)."""

import asyncio
import time

import stamps
from saq import Queue, Worker
from workloads import QUEUE, REDIS_URL, WAIT_SECONDS, job_data, main

IN_FLIGHT = 100  # enqueue calls awaited at once while queueing


async def notify(ctx: dict, *, data: dict) -> None:
    started = time.time()
    stamps.job_ended(started)


async def wait_20ms(ctx: dict, *, data: dict) -> None:
    started = time.time()
    await asyncio.sleep(WAIT_SECONDS)
    stamps.job_ended(started)


async def enqueue_all(name: str, count: int) -> None:
    queue = Queue.from_url(REDIS_URL, name=QUEUE)
    await queue.connect()
    for first in range(0, count, IN_FLIGHT):
        batch = range(first, min(first + IN_FLIGHT, count))
        await asyncio.gather(*(queue.enqueue(name, data=job_data(n)) for n in batch))
    await queue.disconnect()


async def work(concurrency: int) -> None:
    queue = Queue.from_url(REDIS_URL, name=QUEUE)
    worker = Worker(queue, [notify, wait_20ms], concurrency=concurrency)
    try:
        await queue.connect()
        await worker.start()  # until SIGTERM or SIGINT
    finally:
        await queue.disconnect()


if __name__ == "__main__":
    main(lambda name, count: asyncio.run(enqueue_all(name, count)), lambda c: asyncio.run(work(c)))
