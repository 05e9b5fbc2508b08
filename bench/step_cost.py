"""What the job worker's step (queuing/job_queue/step.lua) costs Redis, from Redis's own
counters rather than end-to-end runs, whose noise is larger than a call or two:

    .venv/bin/python bench/step_cost.py            # about two minutes
    .venv/bin/python bench/step_cost.py --jobs 2000 --runs 1
    .venv/bin/python bench/step_cost.py --step candidate/step.lua   # a candidate's

On a redis-server of its own (the project's redis.conf, a free port), --jobs jobs are
queued at once (as 7_job_creator), the counters reset (CONFIG RESETSTAT), and one worker
in this process works them all (burst), 1 at a time (JobWorker) and 2 at a time
(ConcurrentJobWorker); then, per job: the step's calls and its time a call (EVALSHA's,
the commands it runs included), the time of the commands run (the step's and the
worker's others), Redis's main thread's CPU, the commands run (Redis counts the scripts'
own too), the most run, and the bytes sent. Each figure the median of --runs runs.

Then what the step's arguments that are the same in every call of a worker (its keys,
names and settings) cost Redis: a script that does nothing, called with them and
without them (what sending them once would save, at most).
"""

import argparse
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rq import Queue

from bench.context import start_own_server
from bench.jobs import JOB_FUNCTION, job_data
from queuing.job_queue import JobCreator, JobWorker
from queuing.job_queue.concurrency import ConcurrentJobWorker
from queuing.job_queue.step import JobSteps
from queuing.redis_scripts import LuaScript

QUEUE = "step_cost"
TOP = 12  # commands listed by calls per job
STEP = "evalsha"
NOT_COMMANDS = ("info", "bytes", "cpu")  # this script's own reads, and its figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--step", type=Path, help="measure this step.lua instead (a candidate)")
    options = parser.parse_args()
    if options.step:
        JobSteps.SCRIPT = LuaScript.from_file(options.step)
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        server = start_own_server(Path(folder))
        try:
            client = redis.Redis(port=server.port)
            for at_a_time in (1, 2):
                runs = [work_once(client, options.jobs, at_a_time) for _ in range(options.runs)]
                report(runs, at_a_time, options.jobs)
            report_arguments(client)
        finally:
            server.stop()


def work_once(client: redis.Redis, count: int, at_a_time: int) -> dict[str, dict]:
    """The commandstats of working `count` queued jobs, `at_a_time` at a time, with the
    bytes sent and Redis's CPU meanwhile."""
    client.flushall()
    queue = Queue(QUEUE, connection=client)
    JobCreator(queue).create_many(JOB_FUNCTION, [job_data(n) for n in range(count)])
    if at_a_time == 1:
        worker = JobWorker([queue], connection=client)
    else:
        worker = ConcurrentJobWorker([queue], connection=client, concurrency=at_a_time)
    client.config_resetstat()
    sent_before, cpu_before = client.info("stats")["total_net_input_bytes"], redis_cpu(client)
    worker.work(burst=True, logging_level="WARNING")
    sent = client.info("stats")["total_net_input_bytes"] - sent_before
    cpu = redis_cpu(client) - cpu_before
    stats = client.info("commandstats")
    assert queue.finished_job_registry.count == count, "not every job finished"
    figures = {name.removeprefix("cmdstat_"): stat for name, stat in stats.items()}
    constant = resp_bytes(constant_values(worker, queue))
    return figures | {"bytes": {"sent": sent, "constant": constant}, "cpu": {"usec": cpu * 1e6}}


def redis_cpu(client: redis.Redis) -> float:
    """Seconds of CPU of Redis's main thread, which runs the commands."""
    cpu = client.info("cpu")
    return cpu["used_cpu_user_main_thread"] + cpu["used_cpu_sys_main_thread"]


def constant_values(worker: JobWorker, queue: Queue) -> list[str]:
    """What a step's call sends that is the same in every call of this worker on this
    queue: its keys (those of one queue), its settings and names, the queue's name."""
    settings = worker.step_settings()
    steps = JobSteps(worker.connection, worker.name, worker.key, settings)
    steps.close()
    keys = [worker.key, f"{worker.key}:executions", queue.key, queue.intermediate_queue_key]
    keys += [settings.events_key(queue.name)] * 2 + [settings.paused_key(queue.name)]
    return [*keys, *map(str, steps.worker_args.values()), "pop", queue.name]


def resp_bytes(values: list[str]) -> int:
    """Their bytes as RESP sends each: $<length>, CRLF, the bytes, CRLF."""
    return sum(len(value.encode()) + len(str(len(value.encode()))) + 5 for value in values)


def report(runs: list[dict[str, dict]], at_a_time: int, count: int) -> None:
    def per_job(figure: Callable[[dict], float]) -> float:
        return statistics.median(figure(stats) for stats in runs) / count

    commands = [name for name in runs[0] if name not in NOT_COMMANDS]
    calls = per_job(lambda s: s[STEP]["calls"])
    step_usec = statistics.median(s[STEP]["usec"] / s[STEP]["calls"] for s in runs)
    in_commands = per_job(lambda s: sum(s[n]["usec"] for n in commands if n in s and n != STEP))
    run = per_job(lambda s: sum(s[n]["calls"] for n in commands if n in s))
    cpu = per_job(lambda s: s["cpu"]["usec"])
    sent = per_job(lambda s: s["bytes"]["sent"])
    constant = statistics.median(s["bytes"]["constant"] for s in runs)
    print(f"{at_a_time} at a time ({count} jobs, median of {len(runs)} runs), per job:")
    print(f"  the step: {calls:.2f} calls, {step_usec:.1f} µs a call (its commands included)")
    print(f"  in the commands run (the step's and the others): {in_commands:.1f} µs")
    print(f"  Redis's main thread's CPU: {cpu:.1f} µs")
    print(f"  commands run, the scripts' included: {run:.1f}")
    print(f"  bytes sent: {sent:,.0f}, of which the same in every step: {constant:,} a call")
    top = Counter(
        {name: per_job(lambda s, n=name: s.get(n, {}).get("calls", 0)) for name in commands}
    )
    print("  most run: " + ", ".join(f"{name} {n:.2f}" for name, n in top.most_common(TOP)))


def arguments_cost(client: redis.Redis, values: list[str], calls: int = 20_000) -> float:
    """µs a call of a script that does nothing, called with `values` as its arguments
    (Redis reading them and handing them to Lua)."""
    sha = client.script_load("return 0")
    client.config_resetstat()
    for _ in range(calls // 1000):
        with client.pipeline(transaction=False) as pipe:
            for _ in range(1000):
                pipe.evalsha(sha, 0, *values)
            pipe.execute()
    stat = client.info("commandstats")["cmdstat_evalsha"]
    return stat["usec"] / stat["calls"]


def report_arguments(client: redis.Redis) -> None:
    queue = Queue(QUEUE, connection=client)
    values = constant_values(JobWorker([queue], connection=client), queue)
    runs = [(arguments_cost(client, values), arguments_cost(client, [])) for _ in range(3)]
    with_them, without = (statistics.median(run[i] for run in runs) for i in (0, 1))
    print(f"A script that does nothing, with the {len(values)} arguments of a step that are")
    print(f"the same in every call: {with_them:.2f} µs a call; without them: {without:.2f}")


if __name__ == "__main__":
    main()
