"""arq's side of the bench (workloads.py): async def jobs, queued with enqueue_job, worked
by arq's Worker with max_jobs at a time (what `arq bench.WorkerSettings` runs)."""

import asyncio
import os
import time

import stamps
from arq import Worker, create_pool
from arq.connections import RedisSettings
from workloads import NOTIFY, QUEUE, REDIS_URL, WAIT_20MS, WAIT_SECONDS, job_data, main

SETTINGS = RedisSettings.from_dsn(REDIS_URL)
IN_FLIGHT = 100  # enqueue_job calls awaited at once while queueing
# arq looks at its queue every poll_delay, and takes at most max_jobs jobs a look: at its
# default 0.5 s, 2 at a time work 4 jobs a second (at 10 ms: 178 a second, at 1 ms: ~800).
POLL_DELAY = float(os.environ.get("ARQ_POLL_DELAY", "0.001"))


async def notify(ctx: dict, data: dict) -> None:
    started = time.time()
    stamps.job_ended(started)


async def wait_20ms(ctx: dict, data: dict) -> None:
    started = time.time()
    await asyncio.sleep(WAIT_SECONDS)
    stamps.job_ended(started)


async def enqueue_all(name: str, count: int) -> None:
    pool = await create_pool(SETTINGS, default_queue_name=QUEUE)
    for first in range(0, count, IN_FLIGHT):
        batch = range(first, min(first + IN_FLIGHT, count))
        await asyncio.gather(*(pool.enqueue_job(name, job_data(n)) for n in batch))
    await pool.aclose()


def processor(concurrency: int) -> None:
    functions = {NOTIFY: notify, WAIT_20MS: wait_20ms}
    worker = Worker(
        functions=list(functions.values()),
        redis_settings=SETTINGS,
        queue_name=QUEUE,
        max_jobs=concurrency,
        poll_delay=POLL_DELAY,
        handle_signals=True,
    )
    worker.run()


if __name__ == "__main__":
    main(lambda name, count: asyncio.run(enqueue_all(name, count)), processor)
