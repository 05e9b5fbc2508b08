"""The job rows: queueing, working queued jobs, and both at once, on each stack; and
jobs that wait 20 ms each (a gateway's call), many at a time, with the worker side's
resident memory."""

from bench.context import Bench
from bench.processes import tree_rss_mb
from bench.stacks import Side
from harness.waiting import wait_until

WAITING_AT_A_TIME = (50, 200)


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
            for stack, side in bench.job_sides(measure.__name__).items()
        }
        rows.append(bench.row("jobs", name, "jobs/s", by_side))
    for concurrency in WAITING_AT_A_TIME:
        rows += waiting_rows(bench, concurrency)
    return rows


def waiting_rows(bench: Bench, concurrency: int) -> list[dict]:
    """Jobs that each wait 20 ms, `concurrency` at a time: jobs a second, and the peak
    resident memory of the processor's processes meanwhile (each run measures both)."""
    sides = bench.job_sides("waiting")
    runs: dict[str, list[dict]] = {stack: [] for stack in sides}
    name = f"waiting jobs (20 ms each), {concurrency} at a time"
    print(f"  {name}...", flush=True)
    for _ in range(bench.options.runs):
        for stack, side in sides.items():
            runs[stack].append(waiting(bench, side, concurrency))
    rows = []
    for key, label, unit in (
        ("value", name, "jobs/s"),
        ("rss_mb", f"worker side's RSS, {concurrency} at a time", "MB"),
    ):
        measures = {stack: iter([{"value": run[key]} for run in runs[stack]]) for stack in runs}
        by_side = {stack: (lambda it=it: next(it)) for stack, it in measures.items()}
        rows.append(bench.row("jobs", label, unit, by_side, quiet=True))
    return rows


def waiting(bench: Bench, side: Side, concurrency: int) -> dict:
    """The waiting jobs queued, then worked; timed by the jobs' own start and end."""
    bench.flush(side)
    count = bench.options.jobs
    bench.create(side, "enqueue_waiting", count)
    client = bench.clients[side.db]
    peak = 0.0
    with bench.processor(side, concurrency) as processor:

        def finished() -> bool:
            nonlocal peak
            peak = max(peak, tree_rss_mb(processor.process.pid))
            return side.finished(client) >= count

        wait_until(finished, 600, f"{count} jobs finished", every=0.05)
    return {"value": count / side.span(client, count), "rss_mb": peak}


def enqueue(bench: Bench, side: Side, workload: str) -> dict:
    bench.redis.flushall()
    return {"value": bench.options.jobs / bench.create(side, workload, bench.options.jobs)}


def processing(bench: Bench, side: Side, concurrency: int) -> dict:
    """Jobs already queued, then worked; timed by the jobs' own start and end."""
    bench.flush(side)
    bench.work(side, bench.options.jobs, concurrency)
    client = bench.clients[side.db]
    return {"value": bench.options.jobs / side.span(client, bench.options.jobs)}


def end_to_end(bench: Bench, side: Side, concurrency: int) -> dict:
    """A creator queues the jobs and waits for every completed event, while a processor
    works them."""
    bench.redis.flushall()
    with bench.processor(side, concurrency):
        return {"value": bench.options.jobs / bench.create(side, "end_to_end", bench.options.jobs)}
