"""BullMQ's Python package's side of the bench (workloads.py): jobs queued with addBulk,
worked by its Worker with `concurrency` at a time, as its README starts one (an
asyncio program that awaits a stop signal, then closes the worker)."""

import asyncio
import signal
import time

import stamps
from bullmq import Queue, Worker
from workloads import QUEUE, REDIS_URL, WAIT_20MS, WAIT_SECONDS, job_data, main

BULK = 1000  # jobs a call of addBulk


async def handle(job, token) -> None:
    started = time.time()
    if job.name == WAIT_20MS:
        await asyncio.sleep(WAIT_SECONDS)
    stamps.job_ended(started)


async def enqueue_all(name: str, count: int) -> None:
    queue = Queue(QUEUE, {"connection": REDIS_URL})
    for first in range(0, count, BULK):
        batch = range(first, min(first + BULK, count))
        await queue.addBulk([{"name": name, "data": job_data(n)} for n in batch])
    await queue.close()


async def work(concurrency: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    worker = Worker(QUEUE, handle, {"connection": REDIS_URL, "concurrency": concurrency})
    await stop.wait()
    await worker.close()


if __name__ == "__main__":
    main(lambda name, count: asyncio.run(enqueue_all(name, count)), lambda c: asyncio.run(work(c)))
