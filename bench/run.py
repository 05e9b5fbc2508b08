"""Benchmarks of this port side by side with two JS peers, in one run on one machine,
each figure the median of several runs taken in turns: the JS original (Kue 0.11.6 with
node_redis, Express 4) and BullMQ, the Node queue a user would choose today; and, in the
rows of queued jobs worked, the Python queues a user would pick instead (SAQ, arq,
Celery, Dramatiq, BullMQ's Python package: bench/python_peers.py).

    .venv/bin/python bench/run.py                                   # about 10 minutes
    .venv/bin/python bench/run.py --jobs 200 --runs 1 --seconds 1   # a quick check

It starts a redis-server of its own on a free port (from the project's redis.conf),
installs the JS peers with npm in a temporary folder (skipped, with a message, where
node is absent) and the Python peers with pip, each in a virtualenv of its own there,
takes wrk from PATH or Debian's packages (downloaded into .bench/), prints a table and
writes the figures as JSON (--out).

The sentinel section serves the write routes on Sentinel REDIS_URLs too (a primary with
one replica, and with two as ./install_redis.sh --sentinel sets it up; three sentinels:
harness/sentinel.py), in turns with the plain server, so that WAIT's cost shows; then,
on the two-replica set with the set-up script's down-after, kills the primary and
freezes it (SIGSTOP) under a paced load, no one acting until measured
(bench/failover.py):

    .venv/bin/python bench/run.py --only sentinel --out /tmp/sentinel.json   # about 6 minutes
"""

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import python_peers, report
from bench.context import Bench, start_on_free_ports
from bench.peers import Peer
from bench.processes import PROJECT
from harness.redis_server import RedisServer, find_redis_server

# The sections, in the table's order, each measured by bench/sections/<name>.py.
ORDER = ["jobs", "job_options", "memory", "http", "writes", "sentinel", "redis"]
SECTIONS: dict[str, Callable[[Bench], list[dict]]] = {
    name: import_module(f"bench.sections.{name}").rows for name in ORDER
}
SECTIONS_OPTION = ",".join(ORDER)


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
            wanted = options.only.split(",")
            peer = Peer.install(Path(folder)) if options.peer else None
            with_python_peers = options.python_peers and "jobs" in wanted
            python = python_peers.install(Path(folder)) if with_python_peers else {}
            bench = Bench(options, server, peer, python)
            rows = [row for name in ORDER if name in wanted for row in SECTIONS[name](bench)]
        finally:
            server.stop()
    figures = report.report(options, bench, rows, round(time.monotonic() - started))
    report.print_table(figures, rows)
    report.print_python_peers(figures, rows)
    if bench.failover:
        report.print_failover(bench.failover)
    update = options.only.split(",") if options.update else None
    report.save(figures, Path(options.out), update, ORDER)
    print(f"\nFigures written to {options.out} ({figures['seconds']} s in all)")


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000, help="jobs a run (5000)")
    parser.add_argument(
        "--memory-jobs", type=int, help="jobs of the memory row (4 times --jobs: 20000)"
    )
    parser.add_argument(
        "--retried-jobs", type=int, help="jobs of the retried row (2/5 of --jobs: 2000)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs a figure, the median (3)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds an HTTP run (5)")
    parser.add_argument("--connections", type=int, default=32, help="HTTP connections (32)")
    parser.add_argument("--only", default=SECTIONS_OPTION, help=f"sections ({SECTIONS_OPTION})")
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="without the JS peers")
    parser.add_argument(
        "--no-python-peers",
        dest="python_peers",
        action="store_false",
        help="without the Python peers (SAQ, arq, Celery, Dramatiq, BullMQ's package)",
    )
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
    if unknown := set(options.only.split(",")) - set(ORDER):
        parser.error(
            f"--only: no section {', '.join(sorted(unknown))} (sections: {SECTIONS_OPTION})"
        )
    options.memory_jobs = options.memory_jobs or 4 * options.jobs
    # Fewer than --jobs: each try of the port's retried jobs goes through RQ's own worker
    # code, several times slower than the fast path (docs/performance.md).
    options.retried_jobs = options.retried_jobs or max(1, 2 * options.jobs // 5)
    if options.peer and shutil.which("node") is None:
        print("node is not installed here: the JS peers are skipped.")
        options.peer = False
    return options


if __name__ == "__main__":
    main()
