"""The job rows: queueing, working queued jobs, and both at once, on each stack."""

from bench.context import Bench
from bench.stacks import Side


def rows(bench: Bench) -> list[dict]:
    print(f"Jobs ({bench.options.jobs} a run):")
    workloads = [
        ("enqueue, one after another", enqueue, "enqueue_serial"),
        ("enqueue, at once (as 7_job_creator)", enqueue, "enqueue_burst"),
        ("processing, 1 at a time", processing, 1),
        ("processing, 2 at a time", processing, 2),
        ("end to end, 2 at a time", end_to_end, 2),
    ]
    rows = []
    for name, measure, argument in workloads:
        by_side = {
            stack: lambda s=side, m=measure, a=argument: m(bench, s, a)
            for stack, side in bench.sides.items()
        }
        rows.append(bench.row("jobs", name, "jobs/s", by_side))
    return rows


def enqueue(bench: Bench, side: Side, workload: str) -> dict:
    bench.redis.flushall()
    return {"value": bench.options.jobs / bench.create(side, workload, bench.options.jobs)}


def processing(bench: Bench, side: Side, concurrency: int) -> dict:
    """Jobs already queued, then worked; timed by the jobs' own start and end."""
    bench.redis.flushall()
    bench.work(side, bench.options.jobs, concurrency)
    client = bench.clients[side.db]
    return {"value": bench.options.jobs / side.span(client, bench.options.jobs)}


def end_to_end(bench: Bench, side: Side, concurrency: int) -> dict:
    """A creator queues the jobs and waits for every completed event, while a processor
    works them."""
    bench.redis.flushall()
    with bench.processor(side, concurrency):
        return {"value": bench.options.jobs / bench.create(side, "end_to_end", bench.options.jobs)}
