"""Benchmarks of this port side by side with the JS original (Kue 0.11.6 + node_redis,
Express 4), in one run on one machine, each figure the median of several runs:

    .venv/bin/python bench/run.py                                   # about 5 minutes
    .venv/bin/python bench/run.py --jobs 200 --runs 1 --seconds 1   # a quick check

It starts a redis-server of its own on a free port, installs the peer with npm in a
temporary folder (skipped, with a message, where node is absent) and takes wrk from
PATH or Debian's packages (downloaded into .bench/), prints a table and writes the
figures as JSON (--out).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.processes import (
    PROJECT,
    SERVERS,
    Running,
    find_wrk,
    run_wrk,
    serve_command,
    wait_for,
)
from tests.http_client import accepts_connections
from tests.redis_server import RedisServer, find_redis_server, free_port

ROUTES = [("9_stock", "/list_products/1"), ("100_seat", "/available_seats")]


def main() -> None:
    options = parse_options()
    binary = find_redis_server()
    if binary is None:
        sys.exit("No redis-server: run ./install_redis.sh --build-only first.")
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        server = RedisServer(binary, Path(folder) / "redis").start()
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
        "rows": rows,
        "servers": bench.servers,
    }
    print_table(report)
    Path(options.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nFigures written to {options.out}")


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000, help="jobs a run (5000)")
    parser.add_argument("--runs", type=int, default=3, help="runs a figure, the median (3)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds an HTTP run (5)")
    parser.add_argument("--connections", type=int, default=32, help="HTTP connections (32)")
    parser.add_argument("--only", default="jobs,http,redis", help="sections (jobs,http,redis)")
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="without the peer")
    parser.add_argument(
        "--compare-servers", action="store_true", help="also measure WSGI servers for the apps"
    )
    parser.add_argument("--out", default=str(PROJECT / "bench" / "results.json"))
    options = parser.parse_args()
    if options.peer and shutil.which("node") is None:
        print("node is not installed here: the JS peer is skipped.")
        options.peer = False
    return options


class Peer:
    """Kue and Express, installed with npm into a folder of the run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def install(cls, folder: Path) -> "Peer | None":
        peer = folder / "peer"
        shutil.copytree(PROJECT / "bench" / "peer", peer)
        print("Installing the JS peer (Kue 0.11.6, Express 4) with npm...")
        npm = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"]
        result = subprocess.run(npm, cwd=peer, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"npm install failed, so the JS peer is skipped: {result.stderr.strip()}")
            return None
        return cls(peer)

    def command(self, script: str, *args: object) -> list[str]:
        return ["node", str(self.folder / script), *map(str, args)]


class Side:
    """One stack's job workloads, and where it keeps what the harness reads: how many
    jobs finished, and when each started and ended."""

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


class KueSide(Side):
    def __init__(self, peer: Peer, redis_port: int) -> None:
        command = lambda *args: peer.command("kue_bench.js", redis_port, *args)  # noqa: E731
        super().__init__(command, "q:jobs:complete", "q:job:{}", "started_at", "updated_at")

    def seconds(self, stored: bytes) -> float:
        return int(stored) / 1000

    def ready(self, client: redis.Redis, processor: Running, concurrency: int) -> bool:
        return processor.process.stdout.readline().strip() == "ready"


class Bench:
    def __init__(self, options: argparse.Namespace, server: RedisServer, peer: Peer | None):
        self.options = options
        self.server = server
        self.peer = peer
        self.redis = redis.Redis(port=server.port)
        self.env = {**os.environ, "REDIS_URL": server.url}
        self.sides = [PythonSide()] + ([KueSide(peer, server.port)] if peer else [])
        self.servers: dict[str, dict] = {}  # --compare-servers: each server's figures

    def rows(self) -> list[dict]:
        sections = self.options.only.split(",")
        rows = []
        if "jobs" in sections:
            rows += self.job_rows()
        if "http" in sections:
            rows += self.http_rows()
        if "redis" in sections:
            rows += self.redis_rows()
        return rows

    def row(self, name: str, unit: str, *measures: Callable[[], dict]) -> dict:
        """A row of the table: the runs of the port and of the peer taken in turns, so
        that a machine that speeds up or slows down meanwhile weighs on both alike."""
        print(f"  {name}...", flush=True)
        runs: list[list[dict]] = [[] for _ in measures]
        for _ in range(self.options.runs):
            for measure, taken in zip(measures, runs, strict=True):
                taken.append(measure())
        figures = [median(taken) for taken in runs]
        return {"workload": name, "unit": unit, "port": figures[0], "peer": at(figures, 1)}

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
            by_side = [lambda s=side, m=measure, a=argument: m(s, a) for side in self.sides]
            rows.append(self.row(name, "jobs/s", *by_side))
        return rows

    def enqueue(self, side: Side, workload: str) -> dict:
        self.redis.flushall()
        return {"value": self.options.jobs / self.create(side, workload)}

    def processing(self, side: Side, concurrency: int) -> dict:
        """Jobs already queued, then worked; timed by the jobs' own start and end."""
        self.redis.flushall()
        self.create(side, "enqueue_burst")
        with self.processor(side, concurrency):
            wait_for(lambda: side.finished(self.redis) >= self.options.jobs, 600)
        return {"value": self.options.jobs / side.span(self.redis, self.options.jobs)}

    def end_to_end(self, side: Side, concurrency: int) -> dict:
        """A creator queues the jobs and waits for every completed event, while a
        processor works them."""
        self.redis.flushall()
        with self.processor(side, concurrency):
            return {"value": self.options.jobs / self.create(side, "end_to_end")}

    def create(self, side: Side, workload: str) -> float:
        """Run a creator; the seconds it took, as it measured them."""
        command = side.command(workload, self.options.jobs)
        result = subprocess.run(
            command, cwd=PROJECT, env=self.env, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise RuntimeError(f"{workload} failed: {result.stderr[-2000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]

    def processor(self, side: Side, concurrency: int) -> Running:
        processor = Running(side.command("processor", concurrency), self.env, subprocess.PIPE)
        wait_for(lambda: side.ready(self.redis, processor, concurrency), 60)
        return processor

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
            serve = partial(serve_command, module)
            served = [lambda s=serve, p=path: self.load(wrk, s, p)]
            if self.peer:
                served.append(lambda p=path: self.load(wrk, self.express, p))
            rows.append(self.row(f"GET {path}", "req/s", *served))
        return rows

    def express(self, port: int) -> list[str]:
        return self.peer.command("express_app.js", self.server.port, port)

    def load(self, wrk: list[str], serve: Callable[[int], list[str]], path: str) -> dict:
        self.redis.flushall()
        port = free_port()
        with Running(serve(port), self.env):
            wait_for(lambda: accepts_connections(port), 60)
            url = f"http://127.0.0.1:{port}{path}"
            run_wrk(wrk, url, 2, self.options.connections)  # warm up
            return run_wrk(wrk, url, self.options.seconds, self.options.connections)

    def compare_servers(self, wrk: list[str]) -> None:
        print("  WSGI servers, GET /list_products/1 of 9_stock:")
        for name, server in SERVERS.items():
            serve = lambda port, s=server: s("9_stock", port)  # noqa: E731
            runs = [self.load(wrk, serve, "/list_products/1") for _ in range(self.options.runs)]
            figures = self.servers[name] = median(runs)
            print(f"    {name:32s} {figures['value']:7.0f} req/s, p99 {figures['p99_ms']:5.1f} ms")

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
            self.row("Redis GET, no pipelining", "ops/s", lambda: floor(1)),
            self.row("Redis GET, 16 pipelined", "ops/s", lambda: floor(16)),
        ]


def median(runs: list[dict]) -> dict:
    """Each figure, the median of the runs."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def at(items: list, index: int) -> object:
    return items[index] if index < len(items) else None


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


def print_table(report: dict) -> None:
    m = report["machine"]
    print(f"\n{m['cores']} cores ({m['cpu']}), Python {m['python']}, node {m['node']}")
    print(f"{'workload':40s} {'this port':>12s} {'JS original':>12s} {'ratio':>7s}")
    for row in report["rows"]:
        port, peer = row["port"], row["peer"]
        ratio = f"{port['value'] / peer['value']:.2f}x" if peer else "-"
        peer_value = f"{peer['value']:,.0f}" if peer else "-"
        figures = f"{port['value']:>12,.0f} {peer_value:>12s} {ratio:>7s}"
        print(f"{row['workload']:40s} {figures}  {row['unit']}")
        if "p99_ms" in port:
            ours = f"{port['p50_ms']:.1f} / {port['p99_ms']:.1f}"
            theirs = f"{peer['p50_ms']:.1f} / {peer['p99_ms']:.1f}" if peer else "-"
            print(f"{'  p50 / p99 latency, ms':40s} {ours:>12s} {theirs:>12s}")


if __name__ == "__main__":
    main()
