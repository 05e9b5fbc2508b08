"""The JS peers (bench/peer): Kue with node_redis and Express 4, the course's original,
and BullMQ, the Node queue a user would choose today; installed with npm into a folder
of the run, and their job workloads as the harness sees them."""

import json
import shutil
import subprocess
from functools import partial
from pathlib import Path

import redis

from bench.processes import PROJECT, Running
from bench.stacks import Side

NAMES = ("kue", "express", "bullmq")
BULLMQ_DB = 1  # BullMQ's database; the port and Kue use 0 (their keys: rq:*, q:*)
EXPRESS_APPS = {"9_stock": "9-stock", "100_seat": "100-seat"}  # the course's file names


class Peer:
    """The JS peers (Kue, Express, BullMQ), installed with npm into a folder of the run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        installed = lambda name: json.loads(  # noqa: E731
            (folder / "node_modules" / name / "package.json").read_text()
        )["version"]
        self.versions = {name: installed(name) for name in NAMES}

    @classmethod
    def install(cls, folder: Path) -> "Peer | None":
        peer = folder / "peer"
        shutil.copytree(PROJECT / "bench" / "peer", peer)
        wanted = json.loads((peer / "package.json").read_text())["dependencies"]
        names = ", ".join(f"{name} {wanted[name]}" for name in NAMES)
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

    def express(self, redis_port: int, module: str, port: int) -> list[str]:
        """The course's Express app of `module` (9_stock, 100_seat) served on `port`."""
        return self.command("express_app.js", redis_port, port, EXPRESS_APPS[module])


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
