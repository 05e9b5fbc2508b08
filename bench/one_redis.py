"""What one Redis primary holds, from Redis's own counters: memory per job (queued,
finished and kept, finished and removed) and Redis's CPU per job and per reservation;
what a full server and Redis Cluster refuse. docs/past-one-redis.md reads its figures.

    .venv/bin/python bench/one_redis.py              # under a minute
    .venv/bin/python bench/one_redis.py --jobs 2000 --runs 1

On a redis-server of its own (the project's redis.conf, a free port), one client in
this process, one thing at a time, so that nothing else runs on that server:

- memory: INFO memory's used_memory before and after --jobs jobs queued at once
  (JobCreator.create_many, as 7_job_creator), then worked (one JobWorker, burst) and
  kept as RQ keeps them (result_ttl 500 s), then again with remove_on_complete=True;
  MEMORY USAGE of each kind of key a job leaves;
- CPU: INFO cpu (Redis's user + system time, its AOF writes included) and INFO
  commandstats (commands run, those of scripts included) per job queued at once, per
  job queued one after another, per job worked, and per stock reservation (9_stock's
  Lua step, as /reserve_product runs it, without WAIT).

A run alone is not under load, so its CPU figures are Redis's floor: bench/cpu_per_job.py
measures them with the workers' processes sharing the cores.

Then two checks, each on a throwaway server: what a server at its maxmemory still does
(queue a job, start a worker), and what a one-node Redis Cluster does with RQ's enqueue,
the job module's and the seat app's multi-key scripts.
"""

import argparse
import importlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rq import Queue

from bench.context import start_on_free_ports, start_own_server
from bench.jobs import JOB_FUNCTION, job_data
from harness.redis_server import RedisServer, find_redis_server
from harness.waiting import wait_until
from queuing.job_queue import EVENTS_KEPT, IDS_KEY, JobCreator, JobWorker, events_key

QUEUE = "one_redis"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    if options.jobs < 100:
        parser.error("--jobs: at least 100 (the figures are per job)")
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        server = start_own_server(Path(folder))
        try:
            client = redis.Redis(port=server.port)
            warm_up(client)
            for run in range(1, options.runs + 1):
                load = ", ".join(f"{average:.2f}" for average in os.getloadavg())
                print(f"run {run}, {options.jobs} jobs (load average {load}):")
                show(measure(client, options.jobs))
        finally:
            server.stop()
        print("a server at maxmemory (maxmemory-policy noeviction, as redis.conf):")
        show(at_maxmemory(Path(folder)))
        print("a one-node Redis Cluster (every slot on it: only the one-slot rule applies):")
        show(on_a_cluster(Path(folder)))


def show(figures: dict[str, str]) -> None:
    for name, value in figures.items():
        print(f"  {name:60} {value}", flush=True)


def warm_up(client: redis.Redis) -> None:
    """Load the scripts once (they stay across FLUSHALL) and let Redis allocate what a
    first call of each command allocates."""
    queue = Queue(QUEUE, connection=client)
    JobCreator(queue).create_many(JOB_FUNCTION, [job_data(n) for n in range(50)])
    JobWorker([queue], connection=client).work(burst=True, logging_level="WARNING")
    reserve = stock_reservation(client)
    reserve()
    client.flushall()


def measure(client: redis.Redis, jobs: int) -> dict[str, str]:
    figures: dict[str, str] = {}
    queue = Queue(QUEUE, connection=client)
    datas = [job_data(n) for n in range(jobs)]

    client.flushall()
    empty = used_memory(client)
    cost = redis_cost(client, jobs, lambda: JobCreator(queue).create_many(JOB_FUNCTION, datas))
    figures["queue a job, at once: Redis CPU µs, commands"] = cost
    queued = used_memory(client)
    figures["memory per queued job, used_memory: bytes"] = f"{(queued - empty) / jobs:,.0f}"
    first = client.get(IDS_KEY)
    first = int(first) - jobs + 1
    figures["  its hash, rq:job:<id> (MEMORY USAGE)"] = usage(client, f"rq:job:{first}")
    figures["  its entry in rq:queue:<queue>"] = usage(client, queue.key, jobs)
    figures["  its `created` event in job_queue:events:<queue>"] = usage(
        client, events_key(QUEUE), jobs
    )

    worker = JobWorker([queue], connection=client)
    cost = redis_cost(client, jobs, lambda: worker.work(burst=True, logging_level="WARNING"))
    figures["work a job, one JobWorker: Redis CPU µs, commands"] = cost
    finished = used_memory(client)
    figures["memory per finished job, kept 500 s: bytes"] = f"{(finished - empty) / jobs:,.0f}"
    figures["  its hash"] = usage(client, f"rq:job:{first}")
    figures["  its result, rq:results:<id>"] = usage(client, f"rq:results:{first}")
    figures["  its entry in rq:finished:<queue>"] = usage(
        client, queue.finished_job_registry.key, jobs
    )
    figures["  its 3 events (created, start, completed)"] = usage(client, events_key(QUEUE), jobs)
    figures["  keys left, kept"] = f"{client.dbsize():,}"

    client.flushall()
    empty = used_memory(client)
    JobCreator(queue).create_many(JOB_FUNCTION, datas, remove_on_complete=True)
    JobWorker([queue], connection=client).work(burst=True, logging_level="WARNING")
    removed = used_memory(client)
    figures["memory per finished job, remove_on_complete=True"] = (
        f"{(removed - empty) / jobs:,.0f} (its events; at most {EVENTS_KEPT:,} a queue)"
    )
    figures["  keys left, removed"] = f"{client.dbsize():,}"

    client.flushall()
    creator = JobCreator(queue)

    def one_by_one() -> None:
        for data in datas:
            creator.create(JOB_FUNCTION, data)

    figures["queue a job, one after another: Redis CPU µs, commands"] = redis_cost(
        client, jobs, one_by_one
    )

    client.flushall()
    reserve = stock_reservation(client, stock=jobs)
    figures["a stock reservation (take_one.lua): Redis CPU µs, commands"] = redis_cost(
        client, jobs, lambda: [reserve() for _ in range(jobs)]
    )
    left = client.get("item.1")
    assert left is not None and int(left) == 0, f"stock left: {left!r}"
    client.flushall()
    return figures


def at_maxmemory(folder: Path) -> dict[str, str]:
    """What a full server still does: 2,000 jobs queued, then maxmemory set to the memory
    it uses."""
    server = throwaway_server(folder / "full")
    try:
        client = redis.Redis(port=server.port)
        queue = Queue(QUEUE, connection=client)
        JobCreator(queue).create_many(JOB_FUNCTION, [job_data(n) for n in range(2000)])
        client.config_set("maxmemory", client.info("memory")["used_memory"])
        worker = JobWorker([queue], connection=client)
        return {
            "JobCreator.create": outcome(lambda: JobCreator(queue).create(JOB_FUNCTION, {})),
            "a JobWorker, burst": outcome(
                lambda: worker.work(burst=True, logging_level="CRITICAL")
            ),
            "jobs still queued, of 2,000": f"{client.llen(queue.key):,}",
        }
    finally:
        server.stop()


def on_a_cluster(folder: Path) -> dict[str, str]:
    """The multi-key steps of RQ, of the job module and of the seat app on Redis Cluster,
    and the slots of the keys they touch."""
    nodes = folder / "cluster" / "nodes.conf"
    server = throwaway_server(
        folder / "cluster", "--cluster-enabled", "yes", "--cluster-config-file", str(nodes)
    )
    try:
        client = redis.Redis(port=server.port)
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        wait_until(
            lambda: b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO"),
            30,
            "the cluster's state ok",
        )
        queue = Queue("reserve_seat", connection=client)
        seats = importlib.import_module("100_seat").Seats(client)
        figures = {
            "RQ's Queue.enqueue": outcome(lambda: queue.enqueue(JOB_FUNCTION, {})),
            "JobCreator.create (enqueue.lua)": outcome(
                lambda: JobCreator(queue).create(JOB_FUNCTION, {})
            ),
            "the seat app's take_one_seat.lua": outcome(lambda: seats.take_one("1")),
        }
        keys = ["rq:queue:reserve_seat", "rq:job:1", "rq:queues", "rq:wip:reserve_seat"]
        keys += ["rq:results:1", "job_queue:ids", "job_queue:events:reserve_seat"]
        keys += ["available_seats", "reserved_seats"]
        slots = (f"{key} {client.execute_command('CLUSTER', 'KEYSLOT', key)}" for key in keys)
        figures["slots"] = ", ".join(slots)
        return figures
    finally:
        server.stop()


def throwaway_server(folder: Path, *args: str) -> RedisServer:
    """A server from the project's redis.conf that writes nothing to disk."""
    start = lambda attempt: RedisServer(  # noqa: E731
        find_redis_server(), folder, persist=False, args=args
    ).start()
    return start_on_free_ports(start)


def outcome(action: Callable[[], object]) -> str:
    """'done', or the error Redis answered."""
    try:
        action()
    except redis.RedisError as error:
        return f"refused: {str(error).splitlines()[0]}"
    return "done"


def stock_reservation(client: redis.Redis, stock: int = 1) -> Callable[[], object]:
    """What GET /reserve_product/1 asks of Redis (9_stock's Stock), on a stock of `stock`."""
    app = importlib.import_module("9_stock")
    item = {**app.get_item_by_id(1), "initialAvailableQuantity": stock}
    return lambda: app.Stock(client).reserve_stock_by_id(item)


def redis_cost(client: redis.Redis, count: int, action: Callable[[], object]) -> str:
    """Redis's CPU time and the commands it ran, per one of `count` of `action`."""
    client.config_resetstat()
    before = redis_cpu(client)
    action()
    cpu = redis_cpu(client) - before
    stats = client.info("commandstats")
    commands = sum(stat["calls"] for name, stat in stats.items() if not name.endswith("_info"))
    return f"{cpu / count * 1e6:,.0f} µs, {commands / count:.1f} commands"


def redis_cpu(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"]


def usage(client: redis.Redis, key: str, per: int = 1) -> str:
    size = client.memory_usage(key, samples=0)
    return "(none)" if size is None else f"{size / per:,.0f} bytes"


def used_memory(client: redis.Redis) -> int:
    """Once no save or rewrite of the append-only file is under way, without the
    latency histograms Redis keeps per command (CONFIG RESETSTAT frees them); as
    bench/sections/memory.py reads it."""

    def settled() -> bool:
        info = client.info("persistence")
        return not (info["rdb_bgsave_in_progress"] or info["aof_rewrite_in_progress"])

    wait_until(settled, 60, "no save under way")
    client.config_resetstat()
    return client.info("memory")["used_memory"]


if __name__ == "__main__":
    main()
