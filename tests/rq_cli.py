"""RQ's own view of a test's Redis: its command line (`rq worker`, `rq info`, `rq
requeue`, as installed beside this Python) and its registry of workers."""

import subprocess
import sys
from pathlib import Path

import redis
from rq import Queue, Worker

from tests.scripts import PROJECT

RQ = str(Path(sys.executable).with_name("rq"))  # RQ's command line, as installed


def rq_cli(*args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess:
    """Run `rq <args>` to its end (from the project's folder, where it finds the jobs'
    functions); its output as text."""
    return subprocess.run([RQ, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def registered_workers(url: str, queue_name: str) -> int:
    """How many workers of `queue_name` RQ knows of (as `rq info` counts them)."""
    with redis.Redis.from_url(url) as connection:
        return len(Worker.all(queue=Queue(queue_name, connection=connection)))
