"""CPU time per job, this port and BullMQ side by side: what bounds bench/run.py's job
rows, measured under load (each stack's processes and Redis sharing the 2 cores).

    .venv/bin/python bench/cpu_per_job.py             # about 3 minutes
    .venv/bin/python bench/cpu_per_job.py --runs 1 --jobs 500

For each workload and stack, in turns: jobs a second, then per job the CPU time of
Redis (INFO cpu) and of the stack's own processes (the creator, or the processor's
processes), and Redis's time running script calls and commands (INFO commandstats; a
script's time includes the commands it ran, which count under "commands" too). Linux
only (it reads /proc). The JS peers are installed with npm as bench/run.py installs them.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.processes import Running, wait_for
from bench.run import Bench, Peer, Side, start_on_free_ports
from harness.redis_server import RedisServer, find_redis_server

TICKS = os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=2, help="runs of each figure, in turns")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        start = lambda attempt: RedisServer(find_redis_server(), Path(folder) / f"r{attempt}")  # noqa: E731
        server = start_on_free_ports(lambda attempt: start(attempt).start())
        try:
            peer = Peer.install(Path(folder))
            if peer is None:
                sys.exit("The JS peers could not be installed: nothing to compare with.")
            bench = Bench(argparse.Namespace(jobs=options.jobs), server, peer)
            print("per job:                             CPU µs     Redis's time µs")
            print("workload            stack    jobs/s   Redis     own  in scripts  in commands")
            for _ in range(options.runs):
                for workload in ("enqueue_serial", "processor_1", "processor_2"):
                    for stack in ("port", "bullmq"):
                        figures = measure(bench, bench.sides[stack], workload, options.jobs)
                        print(f"{workload:19} {stack:7} " + "  ".join(figures), flush=True)
        finally:
            server.stop()


def measure(bench: Bench, side: Side, workload: str, count: int) -> list[str]:
    client = bench.clients[side.db]
    if workload == "enqueue_serial":
        # The creator's CPU less that of a run of one job (the interpreter's start).
        _, started, _ = creator_cpu(bench, side, 1)
        seconds, own_cpu, server_cpu = creator_cpu(bench, side, count)
        own_cpu -= started
    else:
        bench.redis.flushall()
        bench.create(side, "enqueue_burst", count)
        own_cpu, server_cpu = processor_cpu(bench, side, int(workload.split("_")[1]), count)
    stats = bench.redis.info("commandstats")
    if workload != "enqueue_serial":
        seconds = side.span(client, count)  # the first job's start to the last one's end
    scripts = sum(s["usec"] for name, s in stats.items() if "eval" in name) / 1e6
    commands = sum(s["usec"] for name, s in stats.items() if "eval" not in name) / 1e6
    per_job = [server_cpu, own_cpu, scripts, commands]
    return [f"{count / seconds:6,.0f}"] + [f"{value / count * 1e6:8,.0f}" for value in per_job]


def creator_cpu(bench: Bench, side: Side, count: int) -> tuple[float, float, float]:
    """A creator's run: its seconds, as it measured them, its CPU seconds and Redis's."""
    bench.redis.flushall()
    bench.redis.config_resetstat()
    own_before, server_before = children_cpu(), redis_cpu(bench.redis)
    seconds = bench.create(side, "enqueue_serial", count)
    return seconds, children_cpu() - own_before, redis_cpu(bench.redis) - server_before


def processor_cpu(bench: Bench, side: Side, concurrency: int, count: int) -> tuple[float, float]:
    """Queued jobs worked: the CPU seconds of the processor's processes and of Redis, from
    the processor's being ready until every job finished."""
    client = bench.clients[side.db]
    with Running(side.command("processor", concurrency), bench.env, subprocess.PIPE) as processor:
        wait_for(lambda: side.ready(client, processor, concurrency), 60)
        bench.redis.config_resetstat()
        session = processor.process.pid  # Running starts it in a session of its own
        own_before, server_before = session_cpu(session), redis_cpu(bench.redis)
        wait_for(lambda: side.finished(client) >= count, 600)
        return session_cpu(session) - own_before, redis_cpu(bench.redis) - server_before


def redis_cpu(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def session_cpu(session: int) -> float:
    """CPU seconds of the processes of a session, as they stand."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[3]) == session:  # the session id; then utime and stime, in ticks
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


if __name__ == "__main__":
    main()
