"""What every section of bench/run.py (and bench/cpu_per_job.py) measures with: the
run's Redis server and the harness's clients of it, the apps' environment, the stacks
compared; how a stack's job workloads run; and a row of the table, its runs in turns."""

import argparse
import json
import os
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import redis

from bench.peers import BULLMQ_DB, BullMQSide, KueSide, Peer
from bench.processes import PROJECT, Running
from bench.python_peers import PACKAGES as PYTHON_PEERS
from bench.python_peers import WORKLOADS as PYTHON_PEER_WORKLOADS
from bench.python_peers import PythonPeerSide
from bench.stacks import PythonSide, Side
from harness.redis_server import RedisServer, find_redis_server
from harness.waiting import wait_until

STACKS = ("port", "peer", "bullmq")  # the table's columns; "peer": the JS original
PYTHON_STACKS = tuple(PYTHON_PEERS)  # a second table's, in the rows they take part in
HARNESS = "bench-harness"  # the name of this harness's connections to Redis
T = TypeVar("T")


@dataclass
class Target:
    """A Redis the apps are served on: the harness's client of it (of its primary), and
    the apps' environment, whose REDIS_URL names it."""

    redis: redis.Redis
    env: dict


class Bench:
    def __init__(
        self,
        options: argparse.Namespace,
        server: RedisServer,
        peer: Peer | None,
        python_peers: dict[str, PythonPeerSide] | None = None,
    ):
        self.options = options
        self.server = server
        self.peer = peer
        self.python_peers = python_peers or {}
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

    def row(
        self,
        section: str,
        name: str,
        unit: str,
        measures: dict[str, Callable[[], dict]],
        quiet: bool = False,
    ) -> dict:
        """A row of the table: the runs of each stack taken in turns, so that a machine
        that speeds up or slows down meanwhile weighs on them alike (`quiet`: figures
        measured already, the caller said what)."""
        if not quiet:
            print(f"  {name}...", flush=True)
        runs: dict[str, list[dict]] = {stack: [] for stack in measures}
        for _ in range(1 if section == "memory" else self.options.runs):
            for stack, measure in measures.items():
                runs[stack].append(measure())
        row = {"section": section, "workload": name, "unit": unit}
        row |= {stack: median(runs[stack]) if stack in runs else None for stack in STACKS}
        row |= {stack: median(runs[stack]) for stack in PYTHON_STACKS if stack in runs}
        port = row["port"]["value"]
        others = [stack for stack in (*STACKS[1:], *PYTHON_STACKS) if row.get(stack)]
        row["ratios"] = {stack: port / row[stack]["value"] for stack in others}
        return row

    def job_sides(self, workload: str) -> dict[str, Side]:
        """The stacks a job row compares: this port and the JS peers, and the Python
        peers in the rows they take part in (bench/python_peers.py's WORKLOADS)."""
        python = self.python_peers if workload in PYTHON_PEER_WORKLOADS else {}
        return self.sides | python

    def flush(self, side: Side) -> None:
        """An empty Redis, and `side`'s last run forgotten, before a run of `side`."""
        self.redis.flushall()
        side.clear()

    def express(self, module: str, port: int) -> list[str]:
        """The JS original's app of `module`, on this run's Redis (a `serve` command)."""
        return self.peer.express(self.server.port, module, port)

    # -------------------------------------------------------------- job workloads

    def work(self, side: Side, count: int, concurrency: int, **env: str) -> None:
        """Queue `count` jobs at once, then work them all, `concurrency` at a time."""
        self.create(side, "enqueue_burst", count, **env)
        with self.processor(side, concurrency):
            self.wait_finished(side, count)

    def create(self, side: Side, workload: str, count: int, **env: str) -> float:
        """Run a creator; the seconds it took, as it measured them."""
        return self.run_creator(side, workload, count, **env)["seconds"]

    def run_creator(self, side: Side, workload: str, count: int, **env: str) -> dict:
        """Run a creator; what it measured (the seconds it took, and what else its
        workload tells)."""
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
        return json.loads(result.stdout.strip().splitlines()[-1])

    def processor(self, side: Side, concurrency: int) -> Running:
        """A processor of `side`, started and ready; ended by the caller's `with`."""
        processor = Running(side.command("processor", concurrency), self.env, subprocess.PIPE)
        client = self.clients[side.db]
        try:
            wait_until(lambda: side.ready(client, processor, concurrency), 60, "processor ready")
        except BaseException:
            processor.__exit__()  # not ready: ended here, as no `with` will
            raise
        return processor

    def wait_finished(self, side: Side, count: int) -> None:
        client = self.clients[side.db]
        wait_until(lambda: side.finished(client) >= count, 600, f"{count} jobs finished")


def median(runs: list[dict]) -> dict:
    """Each figure, the median of the runs; what the runs' checks found, run by run."""
    figures = {
        key: statistics.median(run[key] for run in runs) for key in runs[0] if key != "check"
    }
    if "check" in runs[0]:
        figures["checks"] = [run["check"] for run in runs]
    return figures


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


def start_own_server(folder: Path) -> RedisServer:
    """A redis-server of its own (the project's redis.conf) in a folder under `folder`,
    on a free port: for a script whose figures are Redis's own counters."""
    binary = find_redis_server()
    if binary is None:
        raise SystemExit("no redis-server: run ./install_redis.sh first")
    return start_on_free_ports(lambda attempt: RedisServer(binary, folder / f"r{attempt}").start())
