"""CPU time per job, this port and BullMQ side by side: what bounds bench/run.py's job
rows, measured under load (each stack's processes and Redis sharing the 2 cores).

    .venv/bin/python bench/cpu_per_job.py             # about 2 minutes
    .venv/bin/python bench/cpu_per_job.py --runs 1 --jobs 500

For each workload and stack, in turns: jobs a second, then per job the CPU time of
Redis (INFO cpu) and of the stack's own processes (the creator, or the processor's
processes), and Redis's time running script calls and commands (INFO commandstats; a
script's time includes the commands it ran, which count under "commands" too, with the
few this harness sends meanwhile). Linux only (it reads /proc). The JS peers are
installed with npm as bench/run.py installs them.
"""

import argparse
import os
import resource
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from functools import partial
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.context import Bench, start_own_server
from bench.peers import Peer
from bench.profile import redis_cpu
from bench.stacks import Side
from harness.waiting import wait_until

TICKS = os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=2, help="runs of each figure, in turns")
    options = parser.parse_args()
    if options.jobs < 1:
        parser.error("--jobs: at least 1 (the figures are per job)")
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        server = start_own_server(Path(folder))
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


@dataclass
class Costs:
    """What `jobs` jobs cost: CPU seconds of the stack's processes and of Redis, and
    Redis's time in script calls and in commands."""

    jobs: int
    own: float
    server: float
    scripts: float
    commands: float

    def __sub__(self, other: "Costs") -> "Costs":
        pairs = zip(astuple(self), astuple(other), strict=True)
        return Costs(*(mine - theirs for mine, theirs in pairs))

    def per_job(self) -> list[float]:
        """Per job, in µs: Redis's CPU, the stack's own, Redis's time in scripts and in
        commands."""
        if self.jobs < 1:
            raise ValueError(f"no job finished in the window measured ({self.jobs})")
        each = [self.server, self.own, self.scripts, self.commands]
        return [seconds / self.jobs * 1e6 for seconds in each]


class Window:
    """Costs from its opening to its close."""

    def __init__(self, client: redis.Redis, own_cpu: Callable[[], float]) -> None:
        self.client, self.own_cpu = client, own_cpu
        client.config_resetstat()
        self.own_before, self.server_before = own_cpu(), redis_cpu(client)

    def close(self, jobs: int) -> Costs:
        stats = self.client.info("commandstats")
        scripts = sum(s["usec"] for name, s in stats.items() if "eval" in name) / 1e6
        commands = sum(s["usec"] for name, s in stats.items() if "eval" not in name) / 1e6
        own = self.own_cpu() - self.own_before
        return Costs(jobs, own, redis_cpu(self.client) - self.server_before, scripts, commands)


def measure(bench: Bench, side: Side, workload: str, count: int) -> list[str]:
    if workload == "enqueue_serial":
        # Less a run of one job: the creator's start (the interpreter, its imports).
        _, started = creator_run(bench, side, 1)
        seconds, costs = creator_run(bench, side, count)
        costs -= started
    else:
        bench.redis.flushall()
        costs = processor_run(bench, side, int(workload.split("_")[1]), count)
        seconds = side.span(bench.clients[side.db], count)  # first start to last end
    return [f"{count / seconds:6,.0f}"] + [f"{each:8,.0f}" for each in costs.per_job()]


def creator_run(bench: Bench, side: Side, count: int) -> tuple[float, Costs]:
    """A creator's run: its seconds, as it measured them, and its costs."""
    bench.redis.flushall()
    window = Window(bench.redis, children_cpu)
    seconds = bench.create(side, "enqueue_serial", count)
    return seconds, window.close(count)


def processor_run(bench: Bench, side: Side, concurrency: int, count: int) -> Costs:
    """`count` jobs worked: the costs from the processor's being ready until every job
    finished. The jobs are queued once it is ready, while it is stopped: none can
    finish before the window opens, however late the harness sees it ready, so the
    window holds every one of them (and its start, the interpreter and its imports,
    none)."""
    client = bench.clients[side.db]
    with bench.processor(side, concurrency) as processor:
        session = processor.process.pid  # Running starts it in a session of its own
        with stopped(session):
            bench.create(side, "enqueue_burst", count)
            window = Window(bench.redis, partial(session_cpu, session))
            finished_before = side.finished(client)
        bench.wait_finished(side, count + finished_before)
        return window.close(side.finished(client) - finished_before)


@contextmanager
def stopped(session: int) -> Iterator[None]:
    """Every process of a session stopped (SIGSTOP) until the `with` ends. A process
    blocked on a queue may still be handed a job by Redis meanwhile; it works it only
    once continued."""
    os.killpg(session, signal.SIGSTOP)
    try:
        all_stopped = lambda: all(stat[0] in "TZ" for stat in session_stats(session))  # noqa: E731
        wait_until(all_stopped, 10, f"the processes of session {session} stopped")
        yield
    finally:
        os.killpg(session, signal.SIGCONT)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def session_cpu(session: int) -> float:
    """CPU seconds of the processes of a session, as they stand."""
    # utime and stime, in ticks
    return sum(int(stat[11]) + int(stat[12]) for stat in session_stats(session)) / TICKS


def session_stats(session: int) -> list[list[str]]:
    """The fields of /proc/<pid>/stat after the command's name (state first) of each
    process of a session."""
    stats = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[3]) == session:  # the session id
            stats.append(fields)
    return stats


if __name__ == "__main__":
    main()
