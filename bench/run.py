"""Benchmarks of this port side by side with two JS peers, in one run on one machine,
each figure the median of several runs taken in turns: the JS original (Kue 0.11.6 with
node_redis, Express 4) and BullMQ, the Node queue a user would choose today.

    .venv/bin/python bench/run.py                                   # about 10 minutes
    .venv/bin/python bench/run.py --jobs 200 --runs 1 --seconds 1   # a quick check

It starts a redis-server of its own on a free port (from the project's redis.conf),
installs the peers with npm in a temporary folder (skipped, with a message, where node
is absent) and takes wrk from PATH or Debian's packages (downloaded into .bench/),
prints a table and writes the figures as JSON (--out).

The sentinel section serves the write routes on a Sentinel REDIS_URL too (a primary, a
replica, three sentinels: harness/sentinel.py), in turns with the plain server, so that
WAIT's cost shows, then kills the primary under a paced load (bench/failover.py):

    .venv/bin/python bench/run.py --only sentinel --out /tmp/sentinel.json   # about 2 minutes
"""

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import failover
from bench.processes import (
    PROJECT,
    SERVERS,
    Running,
    find_wrk,
    run_wrk,
    serve_command,
    wait_for,
)
from harness.net import accepts_connections, free_port
from harness.redis_server import RedisServer, find_redis_server
from harness.sentinel import ReplicatedRedis

SECTIONS = "jobs,memory,http,writes,sentinel,redis"
ROUTES = [("9_stock", "/list_products/1"), ("100_seat", "/available_seats")]
# The write routes: the stock of product 1 and the seats, set in Redis large enough that
# none run out while wrk loads them (an answer "none left" is a 409 here, which wrk
# would count as an error, and a 200 in the course's JS, which it would not).
STOCK = 100_000_000
SEATS = 100_000_000
# Then the stock check at the edge: this stock, more requests than that at once, every
# answer counted.
EDGE_STOCK, EDGE_REQUESTS, EDGE_CONNECTIONS = 200, 1000, 32
EXPRESS_APPS = {"9_stock": "9-stock", "100_seat": "100-seat"}  # the course's file names
BULLMQ_DB = 1  # BullMQ's database; the port and Kue use 0 (their keys: rq:*, q:*)
STACKS = ("port", "peer", "bullmq")  # the table's columns; "peer": the JS original
HARNESS = "bench-harness"  # the name of this harness's connections to Redis
T = TypeVar("T")


def main() -> None:
    options = parse_options()
    binary = find_redis_server()
    if binary is None:
        sys.exit("No redis-server: run ./install_redis.sh --build-only first.")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        server = start_on_free_ports(
            lambda attempt: RedisServer(binary, Path(folder) / f"redis-{attempt}").start()
        )
        try:
            peer = Peer.install(Path(folder)) if options.peer else None
            bench = Bench(options, server, peer)
            rows = bench.rows()
        finally:
            server.stop()
    report = {
        "machine": machine(),
        "date": datetime.now().isoformat(timespec="seconds"),
        "settings": {key: value for key, value in vars(options).items() if key != "out"},
        "peers": peer.versions if peer else None,
        "redis": bench.redis_settings,
        "seconds": round(time.monotonic() - started),
        # The job workloads, the HTTP reads and the Redis floor: throughput, more is better.
        "rows": [row for row in rows if row["section"] in ("jobs", "http", "redis")],
        # The write routes: throughput, and what each run's check found.
        "write_rows": [row for row in rows if row["section"] == "writes"],
        # Redis memory per finished job: less is better.
        "memory_rows": [row for row in rows if row["section"] == "memory"],
        # The write routes on a plain REDIS_URL and on a Sentinel one, in turns.
        "sentinel_rows": [row for row in rows if row["section"] == "sentinel"],
        # kill -9 of the Sentinel set's primary under a paced load.
        "failover": bench.failover,
        "servers": bench.servers,
    }
    print_table(report, rows)
    if bench.failover:
        print_failover(bench.failover)
    out, seconds = Path(options.out), report["seconds"]
    if options.update and out.exists():
        report = updated(json.loads(out.read_text()), report, options.only.split(","))
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nFigures written to {options.out} ({seconds} s in all)")


def updated(old: dict, report: dict, sections: list[str]) -> dict:
    """The figures of an earlier run (`old`) with those of the sections just run in their
    place; the earlier run's date and settings kept, this run's noted under "updates"."""
    order = SECTIONS.split(",")
    merged = dict(old)
    for key in ("rows", "write_rows", "memory_rows", "sentinel_rows"):
        kept = [row for row in old.get(key, []) if row["section"] not in sections]
        rows = kept + report[key]
        merged[key] = sorted(rows, key=lambda row: order.index(row["section"]))
    if "sentinel" in sections:
        merged["failover"] = report["failover"]
    if report["servers"]:
        merged["servers"] = report["servers"]
    update = {key: report[key] for key in ("date", "settings", "seconds", "machine")}
    merged["updates"] = [*old.get("updates", []), {"sections": sections, **update}]
    return merged


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000, help="jobs a run (5000)")
    parser.add_argument(
        "--memory-jobs", type=int, help="jobs of the memory row (4 times --jobs: 20000)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs a figure, the median (3)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds an HTTP run (5)")
    parser.add_argument("--connections", type=int, default=32, help="HTTP connections (32)")
    parser.add_argument("--only", default=SECTIONS, help=f"sections ({SECTIONS})")
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="without the peers")
    parser.add_argument(
        "--compare-servers", action="store_true", help="also measure WSGI servers for the apps"
    )
    parser.add_argument("--out", default=str(PROJECT / "bench" / "results.json"))
    parser.add_argument(
        "--update",
        action="store_true",
        help="write into --out only the figures of the sections run (--only), keep the rest",
    )
    options = parser.parse_args()
    options.memory_jobs = options.memory_jobs or 4 * options.jobs
    if options.peer and shutil.which("node") is None:
        print("node is not installed here: the JS peers are skipped.")
        options.peer = False
    return options


class Peer:
    """The JS peers (Kue, Express, BullMQ), installed with npm into a folder of the run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        installed = lambda name: json.loads(  # noqa: E731
            (folder / "node_modules" / name / "package.json").read_text()
        )["version"]
        self.versions = {name: installed(name) for name in ("kue", "express", "bullmq")}

    @classmethod
    def install(cls, folder: Path) -> "Peer | None":
        peer = folder / "peer"
        shutil.copytree(PROJECT / "bench" / "peer", peer)
        wanted = json.loads((peer / "package.json").read_text())["dependencies"]
        names = ", ".join(f"{name} {wanted[name]}" for name in ("kue", "express", "bullmq"))
        print(f"Installing the JS peers ({names}) with npm...")
        # --legacy-peer-deps: BullMQ names node_redis >= 5 as an optional peer, which
        # clashes with the course's node_redis 2.6.5; BullMQ uses ioredis here (its
        # default driver, installed beside it), so the clash is only on paper.
        npm = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"]
        npm.append("--legacy-peer-deps")
        result = subprocess.run(npm, cwd=peer, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"npm install failed, so the JS peers are skipped: {result.stderr.strip()}")
            return None
        return cls(peer)

    def command(self, script: str, *args: object) -> list[str]:
        return ["node", str(self.folder / script), *map(str, args)]


class Side:
    """One stack's job workloads, and where it keeps what the harness reads: how many
    jobs finished, and when each started and ended."""

    db = 0

    def __init__(self, command: Callable, finished: str, job: str, start: str, end: str):
        self.command = command  # (workload, argument) -> the command line
        self.finished_key, self.job_key, self.start, self.end = finished, job, start, end

    def finished(self, client: redis.Redis) -> int:
        return client.zcard(self.finished_key)

    def span(self, client: redis.Redis, count: int) -> float:
        """Seconds from the first job's start to the last job's end (ids 1 to count)."""
        with client.pipeline(transaction=False) as pipe:
            for job_id in range(1, count + 1):
                pipe.hmget(self.job_key.format(job_id), self.start, self.end)
            times = [(self.seconds(start), self.seconds(end)) for start, end in pipe.execute()]
        return max(end for _, end in times) - min(start for start, _ in times)

    def seconds(self, stored: bytes) -> float:
        raise NotImplementedError

    def ready(self, client: redis.Redis, processor: Running, concurrency: int) -> bool:
        raise NotImplementedError


class PythonSide(Side):
    def __init__(self) -> None:
        jobs = [sys.executable, str(PROJECT / "bench" / "jobs.py")]
        command = lambda *args: [*jobs, *map(str, args)]  # noqa: E731
        super().__init__(command, "rq:finished:bench", "rq:job:{}", "started_at", "ended_at")

    def seconds(self, stored: bytes) -> float:
        return datetime.fromisoformat(stored.decode()[:-1] + "+00:00").timestamp()

    def ready(self, client: redis.Redis, processor: Running, concurrency: int) -> bool:
        return client.scard("rq:workers:bench") >= concurrency


class NodeSide(Side):
    """A JS stack: times in milliseconds, and a processor that says "ready"."""

    def seconds(self, stored: bytes) -> float:
        return int(stored) / 1000

    def ready(self, client: redis.Redis, processor: Running, concurrency: int) -> bool:
        return processor.process.stdout.readline().strip() == "ready"


class KueSide(NodeSide):
    def __init__(self, peer: Peer, redis_port: int) -> None:
        command = lambda *args: peer.command("kue_bench.js", redis_port, *args)  # noqa: E731
        super().__init__(command, "q:jobs:complete", "q:job:{}", "started_at", "updated_at")


class BullMQSide(NodeSide):
    db = BULLMQ_DB

    def __init__(self, peer: Peer, redis_port: int) -> None:
        command = partial(peer.command, "bullmq_bench.js", redis_port, self.db)
        prefix = "bull:bench:"
        super().__init__(command, f"{prefix}completed", prefix + "{}", "processedOn", "finishedOn")


@dataclass
class Target:
    """A Redis the apps are served on: the harness's client of it (of its primary), and
    the apps' environment, whose REDIS_URL names it."""

    redis: redis.Redis
    env: dict


class Bench:
    def __init__(self, options: argparse.Namespace, server: RedisServer, peer: Peer | None):
        self.options = options
        self.server = server
        self.peer = peer
        # Named, so that used_memory() can tell this harness's connections from the rest.
        client = partial(redis.Redis, port=server.port, client_name=HARNESS)
        self.redis = client()
        self.clients = {0: self.redis, BULLMQ_DB: client(db=BULLMQ_DB)}
        self.env = {**os.environ, "REDIS_URL": server.url}
        self.plain = Target(self.redis, self.env)
        self.failover: dict | None = None  # the sentinel section's failover
        self.sides: dict[str, Side] = {"port": PythonSide()}
        if peer:
            self.sides |= {
                "peer": KueSide(peer, server.port),
                "bullmq": BullMQSide(peer, server.port),
            }
        self.servers: dict[str, dict] = {}  # --compare-servers: each server's figures
        settings = ("stream-node-max-bytes", "hash-max-listpack-value", "appendonly")
        self.redis_settings = {
            "version": self.redis.info("server")["redis_version"],
            **{name: self.redis.config_get(name)[name] for name in settings},
        }

    def rows(self) -> list[dict]:
        sections = self.options.only.split(",")
        rows = []
        if "jobs" in sections:
            rows += self.job_rows()
        if "memory" in sections:
            rows += self.memory_rows()
        if "http" in sections:
            rows += self.http_rows()
        if "writes" in sections:
            rows += self.write_rows()
        if "sentinel" in sections:
            rows += self.sentinel_rows()
        if "redis" in sections:
            rows += self.redis_rows()
        return rows

    def row(
        self, section: str, name: str, unit: str, measures: dict[str, Callable[[], dict]]
    ) -> dict:
        """A row of the table: the runs of each stack taken in turns, so that a machine
        that speeds up or slows down meanwhile weighs on them alike."""
        print(f"  {name}...", flush=True)
        runs: dict[str, list[dict]] = {stack: [] for stack in measures}
        for _ in range(1 if section == "memory" else self.options.runs):
            for stack, measure in measures.items():
                runs[stack].append(measure())
        row = {"section": section, "workload": name, "unit": unit}
        row |= {stack: median(runs[stack]) if stack in runs else None for stack in STACKS}
        port = row["port"]["value"]
        row["ratios"] = {stack: port / row[stack]["value"] for stack in STACKS[1:] if row[stack]}
        return row

    # -------------------------------------------------------------- jobs

    def job_rows(self) -> list[dict]:
        print(f"Jobs ({self.options.jobs} a run):")
        workloads = [
            ("enqueue, one after another", self.enqueue, "enqueue_serial"),
            ("enqueue, at once (as 7_job_creator)", self.enqueue, "enqueue_burst"),
            ("processing, 1 at a time", self.processing, 1),
            ("processing, 2 at a time", self.processing, 2),
            ("end to end, 2 at a time", self.end_to_end, 2),
        ]
        rows = []
        for name, measure, argument in workloads:
            by_side = {
                stack: lambda s=side, m=measure, a=argument: m(s, a)
                for stack, side in self.sides.items()
            }
            rows.append(self.row("jobs", name, "jobs/s", by_side))
        return rows

    def enqueue(self, side: Side, workload: str) -> dict:
        self.redis.flushall()
        return {"value": self.options.jobs / self.create(side, workload, self.options.jobs)}

    def processing(self, side: Side, concurrency: int) -> dict:
        """Jobs already queued, then worked; timed by the jobs' own start and end."""
        self.redis.flushall()
        self.work(side, self.options.jobs, concurrency)
        client = self.clients[side.db]
        return {"value": self.options.jobs / side.span(client, self.options.jobs)}

    def end_to_end(self, side: Side, concurrency: int) -> dict:
        """A creator queues the jobs and waits for every completed event, while a
        processor works them."""
        self.redis.flushall()
        with self.processor(side, concurrency):
            return {"value": self.options.jobs / self.create(side, "end_to_end", self.options.jobs)}

    def work(self, side: Side, count: int, concurrency: int, **env: str) -> None:
        """Queue `count` jobs at once, then work them all, `concurrency` at a time."""
        self.create(side, "enqueue_burst", count, **env)
        with self.processor(side, concurrency):
            wait_for(lambda: side.finished(self.clients[side.db]) >= count, 600)

    def create(self, side: Side, workload: str, count: int, **env: str) -> float:
        """Run a creator; the seconds it took, as it measured them."""
        result = subprocess.run(
            side.command(workload, count),
            cwd=PROJECT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{workload} failed: {result.stderr[-2000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]

    def processor(self, side: Side, concurrency: int) -> Running:
        processor = Running(side.command("processor", concurrency), self.env, subprocess.PIPE)
        wait_for(lambda: side.ready(self.clients[side.db], processor, concurrency), 60)
        return processor

    # -------------------------------------------------------------- memory

    def memory_rows(self) -> list[dict]:
        count = self.options.memory_jobs
        print(f"Redis memory ({count} jobs queued at once, worked 2 at a time):")
        by_side = {stack: partial(self.memory, side) for stack, side in self.sides.items()}
        return [self.row("memory", "Redis memory per finished job", "bytes/job", by_side)]

    def memory(self, side: Side) -> dict:
        """Redis's used_memory, from an empty server to the queue drained (the processor
        stopped), per job. Every stack as its users run it: this port on the project's
        redis.conf, BullMQ with its events stream at its default length (10,000). A
        small run first loads the stack's Lua scripts, which stay across FLUSHALL."""
        count, env = self.options.memory_jobs, {"BULLMQ_EVENTS_MAXLEN": "10000"}
        self.redis.flushall()
        self.work(side, 50, 2, **env)
        self.redis.flushall()
        before = self.used_memory()
        self.work(side, count, 2, **env)
        after = self.used_memory()
        return {"value": (after - before) / count, "before": before, "after": after}

    def used_memory(self) -> int:
        """Once the clients that came for the run have gone (their buffers count in
        used_memory) and no save or rewrite of the append-only file is under way;
        without the latency histogram Redis keeps for each command it has run (some
        15 kB each, allocated at a command's first call and kept across FLUSHALL:
        CONFIG RESETSTAT frees them). MEMORY PURGE changes nothing here: it gives
        memory back to the system, and used_memory counts what is allocated."""

        def settled() -> bool:
            info = self.redis.info("persistence")
            busy = info["rdb_bgsave_in_progress"] or info["aof_rewrite_in_progress"]
            others = [c for c in self.redis.client_list() if c["name"] != HARNESS]
            return not busy and not others

        wait_for(settled, 60)
        self.redis.config_resetstat()
        return self.redis.info("memory")["used_memory"]

    # -------------------------------------------------------------- HTTP

    def http_rows(self) -> list[dict]:
        wrk = find_wrk()
        if wrk is None:
            print("No wrk to load the apps with: the HTTP rows are skipped.")
            return []
        print(f"HTTP ({self.options.connections} connections, {self.options.seconds} s a run):")
        if self.options.compare_servers:
            self.compare_servers(wrk)
        rows = []
        for module, path in ROUTES:
            served = {"port": lambda m=module, p=path: self.load(wrk, serve_command, m, p)}
            if self.peer:
                served["peer"] = lambda m=module, p=path: self.load(wrk, self.express, m, p)
            rows.append(self.row("http", f"GET {path}", "req/s", served))
        return rows

    def express(self, module: str, port: int) -> list[str]:
        return self.peer.command("express_app.js", self.server.port, port, EXPRESS_APPS[module])

    def load(self, wrk: list[str], serve: Callable, module: str, path: str) -> dict:
        self.redis.flushall()
        with Serving(serve, module, self.env) as port:
            url = f"http://127.0.0.1:{port}{path}"
            run_wrk(wrk, url, 2, self.options.connections)  # warm up
            return run_wrk(wrk, url, self.options.seconds, self.options.connections)

    def compare_servers(self, wrk: list[str]) -> None:
        print("  WSGI servers, GET /list_products/1 of 9_stock (runs in turns):")
        runs: dict[str, list[dict]] = {name: [] for name in SERVERS}
        for _ in range(self.options.runs):
            for name, server in SERVERS.items():
                runs[name].append(self.load(wrk, server, "9_stock", "/list_products/1"))
        for name in SERVERS:
            figures = self.servers[name] = median(runs[name])
            print(f"    {name:40s} {figures['value']:7.0f} req/s, p99 {figures['p99_ms']:5.1f} ms")

    # -------------------------------------------------------------- write routes

    def write_rows(self) -> list[dict]:
        wrk = find_wrk()
        if wrk is None:
            print("No wrk to load the apps with: the write routes are skipped.")
            return []
        print(f"Write routes ({self.options.connections} connections, {self.options.seconds} s):")
        routes = [
            ("GET /reserve_product/1", self.reserve_product),
            ("GET /reserve_seat (after /process)", self.reserve_seat),
        ]
        rows = []
        for name, measure in routes:
            served = {"port": lambda m=measure: m(wrk, serve_command, "port")}
            if self.peer:
                served["peer"] = lambda m=measure: m(wrk, self.express, "peer")
            rows.append(self.row("writes", name, "req/s", served))
        return rows

    def reserve_product(
        self, wrk: list[str], serve: Callable, stack: str, on: Target | None = None
    ) -> dict:
        """wrk on a stock that cannot run out, every answer a confirmation: the stock
        must go down by at least the confirmations wrk counted (it can go down by up to
        a request a connection more: those still in flight when wrk stopped). Then the
        edge: EDGE_REQUESTS at once for EDGE_STOCK units, every answer counted. On the
        plain server unless `on` another."""
        on = on or self.plain
        on.redis.flushall()
        with Serving(serve, "9_stock", on.env) as port:
            url = f"http://127.0.0.1:{port}/reserve_product/1"
            on.redis.set("item.1", STOCK)
            run_wrk(wrk, url, 2, self.options.connections)  # warm up
            time.sleep(0.5)  # the warm-up's last requests
            before = int(on.redis.get("item.1"))
            figures = run_wrk(wrk, url, self.options.seconds, self.options.connections)
            time.sleep(0.5)
            taken = before - int(on.redis.get("item.1"))
            on.redis.set("item.1", EDGE_STOCK)
            answers = get_many(port, "/reserve_product/1", EDGE_REQUESTS, EDGE_CONNECTIONS)
            edge_confirmed = sum(b'"Reservation confirmed"' in body for _, body in answers)
            edge_left = int(on.redis.get("item.1"))
        confirmed = int(figures["requests"])
        check = {
            "confirmed": confirmed,
            "stock_taken": taken,
            "oversold": max(0, confirmed - taken),  # at least this many
            "edge_stock": EDGE_STOCK,
            "edge_confirmed": edge_confirmed,
            "edge_stock_left": edge_left,
            "edge_oversold": max(0, edge_confirmed - (EDGE_STOCK - edge_left)),
        }
        # Every confirmation took a unit, and the edge's stock was sold to the last one.
        check["right"] = not check["oversold"] and not check["edge_oversold"] and edge_left == 0
        return {**figures, "check": check}

    def reserve_seat(
        self, wrk: list[str], serve: Callable, stack: str, on: Target | None = None
    ) -> dict:
        """wrk on seats that cannot run out, the app's queue worked since /process;
        once the queue has drained, the seats taken must be the jobs completed. On the
        plain server unless `on` another."""
        on = on or self.plain
        on.redis.flushall()
        with Serving(serve, "100_seat", on.env) as port:
            wait_for(lambda: on.redis.get("available_seats") is not None, 30)  # launched
            on.redis.set("available_seats", SEATS)
            get_many(port, "/process", 1, 1)
            url = f"http://127.0.0.1:{port}/reserve_seat"
            count = SEAT_JOBS[stack]
            run_wrk(wrk, url, 2, self.options.connections)  # warm up
            before = self.seat_jobs(count, on.redis)
            figures = run_wrk(wrk, url, self.options.seconds, self.options.connections)
            ended = time.monotonic()
            figures["backlog"] = self.seat_jobs(count, on.redis)["queued"]
            wait_for(lambda: self.seat_jobs(count, on.redis)["drained"], 600)
            # An answer says "in process": the reservations made per second are the jobs
            # worked from wrk's start until the queue drained, over that time.
            drain = time.monotonic() - ended
            jobs = self.seat_jobs(count, on.redis)
            worked = jobs["completed"] + jobs["failed"] - before["completed"] - before["failed"]
            figures["worked_per_s"] = worked / (self.options.seconds + drain)
            taken = SEATS - int(on.redis.get("available_seats"))
        check = {
            "jobs": jobs["created"],
            "completed": jobs["completed"],
            "failed": jobs["failed"],
            "seats_taken": taken,
            "oversold": max(0, jobs["completed"] - taken),
        }
        # Every job completed and took a seat; this port also records which job holds one.
        check["right"] = taken == jobs["completed"] == jobs["created"]
        if stack == "port":
            check["claims"] = on.redis.scard("reserved_seats")
            check["right"] &= check["claims"] == taken
        return {**figures, "check": check}

    # -------------------------------------------------------------- Sentinel

    def sentinel_rows(self) -> list[dict]:
        """The write routes on the plain server and on a Sentinel set (its confirmed
        writes wait for the replica: WAIT 1), runs in turns; then the failover."""
        wrk = find_wrk()
        if wrk is None:
            print("No wrk to load the apps with: the Sentinel rows are skipped.")
            return []
        print(
            f"Sentinel (a primary, a replica, three sentinels; {self.options.connections} "
            f"connections, {self.options.seconds} s, in turns with the plain server):"
        )
        with tempfile.TemporaryDirectory(prefix="bench-sentinel-") as folder:
            binary = self.server.binary
            replicated = start_on_free_ports(
                lambda attempt: ReplicatedRedis(binary, Path(folder) / f"set-{attempt}").start()
            )
            try:
                return self.measure_sentinel(wrk, replicated)
            finally:
                replicated.stop()

    def measure_sentinel(self, wrk: list[str], replicated: ReplicatedRedis) -> list[dict]:
        primary = redis.Redis(port=replicated.primary().port, client_name=HARNESS)
        sentinel = Target(primary, {**os.environ, "REDIS_URL": replicated.url})
        # Named short, to fit the table: the seat runs call /process first, as the
        # write section's do.
        routes = [
            ("GET /reserve_product/1", self.reserve_product),
            ("GET /reserve_seat", self.reserve_seat),
        ]
        rows = []
        try:
            for name, measure in routes:
                print(f"  {name}...", flush=True)
                runs: dict[str, list[dict]] = {"plain": [], "sentinel": []}
                for _ in range(self.options.runs):
                    runs["plain"].append(measure(wrk, serve_command, "port"))
                    runs["sentinel"].append(measure(wrk, serve_command, "port", sentinel))
                plain, on_sentinel = median(runs["plain"]), median(runs["sentinel"])
                rows.append(self.sentinel_row(f"{name} (redis://)", plain))
                rows.append(self.sentinel_row(f"{name} (Sentinel, WAIT)", on_sentinel))
                rows[-1]["vs_plain"] = {
                    "ratio": on_sentinel["value"] / plain["value"],
                    "p50_ms_more": on_sentinel["p50_ms"] - plain["p50_ms"],
                    "p99_ms_more": on_sentinel["p99_ms"] - plain["p99_ms"],
                }
        finally:
            primary.close()
        self.failover = failover.measure(replicated, serve_command, sentinel.env, self.options.runs)
        return rows

    @staticmethod
    def sentinel_row(name: str, figures: dict) -> dict:
        row = {"section": "sentinel", "workload": name, "unit": "req/s", "port": figures}
        return row | {"peer": None, "bullmq": None, "ratios": {}}

    def seat_jobs(
        self, count: Callable[[redis.Redis], tuple[int, int, int]], client: redis.Redis
    ) -> dict:
        created, completed, failed = count(client)
        return {
            "created": created,
            "completed": completed,
            "failed": failed,
            "queued": created - completed - failed,
            "drained": completed + failed == created,
        }

    # -------------------------------------------------------------- Redis

    def redis_rows(self) -> list[dict]:
        benchmark = Path(find_redis_server()).with_name("redis-benchmark")
        if not benchmark.exists():
            print("No redis-benchmark beside redis-server: the Redis floor is skipped.")
            return []
        print("The floor, Redis itself (redis-benchmark):")
        command = [str(benchmark), "-p", str(self.server.port), "-t", "get", "-n", "200000", "-q"]

        def floor(pipelined: int) -> dict:
            out = subprocess.run([*command, "-P", str(pipelined)], capture_output=True, text=True)
            return {"value": float(out.stdout.split("GET: ")[-1].split()[0])}

        return [
            self.row("redis", "Redis GET, no pipelining", "ops/s", {"port": lambda: floor(1)}),
            self.row("redis", "Redis GET, 16 pipelined", "ops/s", {"port": lambda: floor(16)}),
        ]


def start_on_free_ports(start: Callable[[int], T], tries: int = 3) -> T:
    """`start(attempt)`, which starts servers on free ports, tried again on new ports if
    a port was taken by another process between its choice and its use (other test
    suites run on this machine too); a failed start stops what it started."""
    for attempt in range(1, tries + 1):
        try:
            return start(attempt)
        except RuntimeError as error:
            if attempt == tries:
                raise
            print(f"  a server did not start ({error}); again on other ports")
    raise AssertionError("unreachable")


def _count(created: str, completed: str, failed: str) -> Callable[[redis.Redis], tuple]:
    """A stack's seat jobs: created (its id counter), completed, failed."""

    def count(client: redis.Redis) -> tuple[int, int, int]:
        with client.pipeline(transaction=False) as pipe:
            pipe.get(created).zcard(completed).zcard(failed)
            ids, done, failures = pipe.execute()
        return int(ids or 0), done, failures

    return count


# Where each stack keeps its seat jobs: job_queue's id counter and RQ's registries;
# Kue's id counter and its sets of jobs by state.
SEAT_JOBS = {
    "port": _count("job_queue:ids", "rq:finished:reserve_seat", "rq:failed:reserve_seat"),
    "peer": _count("q:ids", "q:jobs:reserve_seat:complete", "q:jobs:reserve_seat:failed"),
}


class Serving:
    """An app served (this port's or Express's) on a free port, until the `with` ends."""

    def __init__(self, serve: Callable, module: str, env: dict) -> None:
        self.port = free_port()
        self.running = Running(serve(module, self.port), env)

    def __enter__(self) -> int:
        wait_for(lambda: accepts_connections(self.port), 60)
        return self.port

    def __exit__(self, *exc: object) -> None:
        self.running.__exit__(*exc)


def get_many(port: int, path: str, count: int, connections: int) -> list[tuple[int, bytes]]:
    """`count` GETs on `connections` connections at once: each answer's status and body."""

    def one_connection(requests: int) -> list[tuple[int, bytes]]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        answers = []
        try:
            for _ in range(requests):
                connection.request("GET", path)
                response = connection.getresponse()
                answers.append((response.status, response.read()))
        finally:
            connection.close()
        return answers

    shares = [count // connections + (n < count % connections) for n in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        return [answer for answers in pool.map(one_connection, shares) for answer in answers]


def median(runs: list[dict]) -> dict:
    """Each figure, the median of the runs; what the runs' checks found, run by run."""
    figures = {
        key: statistics.median(run[key] for run in runs) for key in runs[0] if key != "check"
    }
    if "check" in runs[0]:
        figures["checks"] = [run["check"] for run in runs]
    return figures


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "")
    node = (
        shutil.which("node")
        and subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    )
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "node": node or None,
    }


def print_table(report: dict, rows: list[dict]) -> None:
    m, peers, r = report["machine"], report["peers"], report["redis"]
    print(f"\n{m['cores']} cores ({m['cpu']}), Python {m['python']}, node {m['node']}")
    print(f"Redis {r['version']} (stream-node-max-bytes {r['stream-node-max-bytes']},", end=" ")
    print(f"hash-max-listpack-value {r['hash-max-listpack-value']}: the project's redis.conf)")
    if peers:
        print(
            f"JS original: Kue {peers['kue']} for jobs, Express {peers['express']} for HTTP; "
            f"BullMQ {peers['bullmq']} (its events stream kept to 100,000 entries for the "
            "end-to-end listener, so that it loses none; at its default 10,000 in the memory row)"
        )
    print(f"{'workload':40s} {'this port':>12s} {'JS original':>12s} {'ratio':>7s}", end="")
    print(f" {'BullMQ':>10s} {'ratio':>7s}")
    print(f"{'':40s} {'':>12s} {'Kue/Express':>12s} {'port/JS':>7s} {'':>10s} {'port/BQ':>7s}")
    for row in rows:
        port, peer, bullmq = row["port"], row["peer"], row["bullmq"]
        print(f"{row['workload']:40s} {port['value']:>12,.0f}", end="")
        print(f" {figure(peer):>12s} {ratio(row, 'peer'):>7s}", end="")
        print(f" {figure(bullmq):>10s} {ratio(row, 'bullmq'):>7s}  {row['unit']}")
        if "p99_ms" in port:
            ours = f"{port['p50_ms']:.1f} / {port['p99_ms']:.1f}"
            theirs = f"{peer['p50_ms']:.1f} / {peer['p99_ms']:.1f}" if peer else "-"
            print(f"{'  p50 / p99 latency, ms':40s} {ours:>12s} {theirs:>12s}")
        if "worked_per_s" in port:
            theirs = f"{peer['worked_per_s']:,.0f}" if peer else "-"
            print(f"{'  jobs worked/s, until the queue drained':40s}", end="")
            print(f" {port['worked_per_s']:>12,.0f} {theirs:>12s}", end="")
            print(f" {port['worked_per_s'] / peer['worked_per_s']:>6.2f}x" if peer else "")
            theirs = f"{peer['backlog']:,}" if peer else "-"
            print(f"{'  jobs still queued as wrk ended':40s} {port['backlog']:>12,} {theirs:>12s}")
        if row["section"] == "memory":
            print("  less is better; used_memory from an empty server to the queue drained")
        if "vs_plain" in row:
            cost = row["vs_plain"]
            print(f"  WAIT's cost: {cost['ratio']:.2f}x the req/s of redis://", end="")
            print(f", p50 {cost['p50_ms_more']:+.1f} ms, p99 {cost['p99_ms_more']:+.1f} ms")
        for stack in ("port", "peer"):
            if row[stack] and "checks" in row[stack]:
                print(f"  {'this port' if stack == 'port' else 'JS original'}: ", end="")
                print(describe_checks(row["workload"], row[stack]["checks"]))


def print_failover(measured: dict) -> None:
    runs = measured["runs"]
    print(f"\nFailover, kill -9 of the primary under {measured['clients']} paced clients", end="")
    print(f" (GET {failover.PRODUCT} on ./serve.sh 9_stock; median of {len(runs)} runs):")
    print(f"  sentinels promote the replica  {measured['promoted_s']:6.2f} s after the kill")
    print(
        f"  old primary back as a replica  {measured['rejoined_s']:6.2f} s (seen by the sentinels)"
    )
    print(f"  first reservation confirmed    {measured['first_confirmed_s']:6.2f} s after the kill")
    failed = ", ".join(str(run["failed"]) for run in runs)
    unclear = measured["unclear"]
    clear = "every one a JSON 503" if not unclear else f"{unclear} NOT a JSON 503"
    print(f"  requests failed meanwhile      {failed} ({clear})")
    confirmed = sum(run["confirmed"] for run in runs)
    taken = sum(run["stock_taken"] for run in runs)
    lost = "nothing confirmed lost" if not measured["lost"] else f"{measured['lost']} LOST"
    print(f"  {confirmed:,} confirmed, stock down {taken:,}: {lost}")


def figure(figures: dict | None) -> str:
    return f"{figures['value']:,.0f}" if figures else "-"


def ratio(row: dict, stack: str) -> str:
    return f"{row['ratios'][stack]:.2f}x" if stack in row["ratios"] else "-"


def describe_checks(workload: str, checks: list[dict]) -> str:
    """What the write runs' checks found, in one line."""
    oversold = [check for check in checks if check["oversold"] or check.get("edge_oversold")]
    runs = f"oversold in {len(oversold)} of {len(checks)} runs" if oversold else "never oversold"
    wrong = [check for check in checks if not check["right"] and check not in oversold]
    if wrong:  # not oversold, yet not right either: units or jobs unaccounted for
        runs = f"WRONG in {len(wrong)} of {len(checks)} runs, {runs}"
    if "stock_taken" in checks[0]:
        confirmed = sum(check["confirmed"] for check in checks)
        taken = sum(check["stock_taken"] for check in checks)
        edge = ", ".join(str(check["edge_confirmed"]) for check in checks)
        return (
            f"{runs}: {confirmed:,} confirmed, stock down {taken:,}; "
            f"{EDGE_REQUESTS} at once for a stock of {EDGE_STOCK}: {edge} confirmed"
        )
    completed = sum(check["completed"] for check in checks)
    taken = sum(check["seats_taken"] for check in checks)
    failed = sum(check["failed"] for check in checks)
    return f"{runs}: {completed:,} jobs completed ({failed} failed), {taken:,} seats taken"


if __name__ == "__main__":
    main()
