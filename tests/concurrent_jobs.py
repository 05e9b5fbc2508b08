"""Jobs for the tests of a worker of several jobs at a time: each says when it ran and
on which thread, so a test can tell they overlapped."""

import asyncio
import threading
import time

from rq import get_current_job


def sleeps(data: dict) -> dict:
    start = time.time()
    time.sleep(data.get("seconds", 0.2))
    return {"start": start, "end": time.time(), "thread": threading.get_ident()}


async def sleeps_async(data: dict) -> dict:
    start = time.time()
    await asyncio.sleep(data.get("seconds", 0.2))
    job = get_current_job()
    return {"start": start, "end": time.time(), "job": job.id if job else None}


def hangs(data: dict) -> None:
    while True:  # past its timeout: stopped at a Python instruction
        time.sleep(0.01)


async def hangs_async(data: dict) -> None:
    await asyncio.sleep(3600)


def fails(data: dict) -> None:
    raise ValueError("this job fails")


def nothing(data: dict) -> None:
    """The bench's job."""


async def waits_20ms(data: dict) -> None:
    await asyncio.sleep(0.02)


def sleeps_20ms(data: dict) -> None:
    time.sleep(0.02)


def stuck_in_one_call(data: dict) -> None:
    """One long sleep: an exception raised in its thread waits for the call to return."""
    time.sleep(data.get("seconds", 30))
