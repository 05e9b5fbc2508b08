"""The rows of Kue's job options, this port (job_queue's `delay` and `attempts` on RQ)
side by side with BullMQ's (`{delay: 1000}`, `{attempts: 2}`): delayed jobs, how late
they start; retried jobs, how fast they all end. Kue is not measured here."""

import statistics
from collections.abc import Callable

from bench.context import Bench
from bench.stacks import Side

SECTION = "job_options"
CONCURRENCY = 2  # as the course's processor (7_job_processor) works its queue
STACKS = ("port", "bullmq")
# Where each stack counts a job's tries, and what it holds once a job has failed its
# first try and succeeded on its second: RQ's retries left, down from 1 to 0; BullMQ's
# attempts made ("atm").
TRIED_TWICE = {"port": ("retries_left", b"0"), "bullmq": ("atm", b"2")}


def rows(bench: Bench) -> list[dict]:
    delayed, retried = bench.options.jobs, bench.options.retried_jobs
    print(f"Kue's job options ({delayed} delayed jobs, {retried} retried jobs a run):")
    delayed_row = bench.row(
        SECTION,
        f"delayed 1 s, {CONCURRENCY} at a time: last late by",
        "ms (less is better)",
        measures(bench, delayed_jobs),
    )
    delayed_row["method"] = (
        "jobs queued at once while a processor waits, each due 1 s after the call; a "
        "job's lateness: when it started less when it was due; Kue not measured"
    )
    retried_row = bench.row(
        SECTION,
        f"retried once, end to end, {CONCURRENCY} at a time",
        "jobs/s",
        measures(bench, retried_jobs),
    )
    retried_row["method"] = (
        "each job fails its first try and succeeds on its second (2 attempts, no backoff); "
        "jobs/s from the creator's call to its last completed event; Kue not measured"
    )
    return [delayed_row, retried_row]


def measures(bench: Bench, measure: Callable[[Bench, str, Side], dict]) -> dict:
    return {
        stack: lambda s=stack, side=side: measure(bench, s, side)
        for stack, side in bench.sides.items()
        if stack in STACKS
    }


def delayed_jobs(bench: Bench, stack: str, side: Side) -> dict:
    """With a processor waiting, a creator queues the jobs at once, each delayed by 1 s;
    once every one has ended, each job's start (as the stack dates it) is compared with
    when it was due: a second after the creator's call, by the wall clock. The figure is
    the last one's lateness; the median's and the first's too."""
    bench.redis.flushall()
    count = bench.options.jobs
    with bench.processor(side, CONCURRENCY):
        due = bench.run_creator(side, "enqueue_delayed", count)["due"]
        bench.wait_finished(side, count)
    late = sorted(start - due for start in side.starts(bench.clients[side.db], count))
    return {
        "value": late[-1] * 1000,
        "median_late_ms": statistics.median(late) * 1000,
        "first_late_ms": late[0] * 1000,
    }


def retried_jobs(bench: Bench, stack: str, side: Side) -> dict:
    """With a processor waiting, a creator queues the jobs at once, each of which fails
    its first try and succeeds on its second (2 attempts, no backoff), and waits for
    every one's completed event: jobs/s from its call to the last event, as the end to
    end row. Every job is then checked to have been tried twice."""
    bench.redis.flushall()
    count = bench.options.retried_jobs
    with bench.processor(side, CONCURRENCY):
        seconds = bench.run_creator(side, "retried_end_to_end", count)["seconds"]
    field, tried_twice = TRIED_TWICE[stack]
    client = bench.clients[side.db]
    with client.pipeline(transaction=False) as pipe:
        for job_id in range(1, count + 1):
            pipe.hget(side.job_key.format(job_id), field)
        not_twice = sum(value != tried_twice for value in pipe.execute())
    if not_twice:
        raise RuntimeError(f"{stack}: {not_twice} of {count} retried jobs not tried twice")
    return {"value": count / seconds}
