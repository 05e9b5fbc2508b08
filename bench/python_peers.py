"""The Python peers (bench/python_peer): the queues a Python user would pick instead of
this port, each pinned and installed into a virtualenv of its own in a folder of the run
(their Redis clients' versions clash: arq and BullMQ's package want redis-py 5, Celery's
Redis transport 6 or later), and their job workloads as the harness sees them.

They take part in the rows of jobs already queued (processing 1 and 2 at a time, and
jobs that wait 20 ms, 50 and 200 at a time). Each peer's jobs note their own start and
end (bench/python_peer/stamps.py): none of their stores has both for every peer."""

import subprocess
import sys
from pathlib import Path

import redis

from bench.processes import PROJECT, Running
from bench.python_peer import stamps
from bench.stacks import Side

SCRIPTS = PROJECT / "bench" / "python_peer"
# The table's columns, in order, and each one's package (its version shown).
PACKAGES = {
    "saq": "saq",
    "arq": "arq",
    "celery": "celery",
    "dramatiq": "dramatiq",
    "bullmq_py": "bullmq",
}
NAMES = {
    "saq": "SAQ",
    "arq": "arq",
    "celery": "Celery",
    "dramatiq": "Dramatiq",
    "bullmq_py": "BullMQ py",
}
# How each one works the jobs, as the report says.
HOW = {
    "saq": "Worker(queue, functions, concurrency=c): async def jobs on one event loop",
    "arq": "Worker(max_jobs=c, poll_delay=1 ms): async def jobs on one event loop (its "
    "default poll_delay of 0.5 s takes at most c jobs a half second)",
    "celery": "`celery worker -c c`, Redis broker, no result backend: prefork (a process "
    "a job) up to 4 at a time, the threads pool above",
    "dramatiq": "`dramatiq --processes 1 --threads c`, Redis broker",
    "bullmq_py": "Worker(concurrency=c): async def jobs on one event loop",
}
WORKLOADS = ("processing", "waiting")  # the rows they take part in


class PythonPeerSide(Side):
    """A Python peer's workloads (bench/python_peer/<peer>_bench.py), run by its own
    virtualenv's interpreter; what finished, and when, from its jobs' stamps."""

    def __init__(self, stack: str, python: Path, stamps_folder: Path) -> None:
        script = SCRIPTS / f"{stack.removesuffix('_py')}_bench.py"
        env = f"BENCH_STAMPS={stamps_folder}"
        command = lambda *args: ["env", env, str(python), str(script), *map(str, args)]  # noqa: E731
        super().__init__(command, "", "", "", "")
        self.stamps_folder = stamps_folder

    def clear(self) -> None:
        for path in self.stamps_folder.glob("*.stamps"):
            path.unlink()

    def finished(self, client: redis.Redis) -> int:
        return stamps.read(self.stamps_folder)[0]

    def span(self, client: redis.Redis, count: int) -> float:
        _, first, last = stamps.read(self.stamps_folder)
        return last - first

    def ready(self, client: redis.Redis, processor: Running, concurrency: int) -> bool:
        return True  # its jobs are queued before it starts, and timed by their stamps


def install(folder: Path) -> dict[str, PythonPeerSide]:
    """Each peer in a virtualenv of its own under `folder`; those whose install failed are
    skipped, with a message."""
    print(f"Installing the Python peers ({', '.join(NAMES.values())}) with pip...")
    sides = {}
    for stack in PACKAGES:
        venv = folder / f"venv-{stack}"
        python = venv / "bin" / "python"
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "-q", "-r", str(requirements(stack))],
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True)
            if result.returncode != 0:
                print(
                    f"  {NAMES[stack]} skipped, its install failed: {result.stderr.strip()[-500:]}"
                )
                break
        else:
            stamps_folder = folder / f"stamps-{stack}"
            stamps_folder.mkdir()
            sides[stack] = PythonPeerSide(stack, python, stamps_folder)
    return sides


def versions(sides: dict[str, PythonPeerSide]) -> dict[str, dict]:
    """Each installed peer's version, as its requirements pin it, and how it was run."""
    return {stack: {"version": pinned(stack), "how": HOW[stack]} for stack in sides}


def pinned(stack: str) -> str:
    package = PACKAGES[stack]
    lines = requirements(stack).read_text().splitlines()
    return next(line.split("==")[1].split()[0] for line in lines if line.startswith(f"{package}=="))


def requirements(stack: str) -> Path:
    return SCRIPTS / "requirements" / f"{stack.removesuffix('_py')}.txt"
