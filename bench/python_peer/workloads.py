"""What every Python peer's script shares: the jobs' data and names, and its command
line, as bench/jobs.py's for this port:

    python <peer>_bench.py enqueue_burst <n>    queue n jobs that do nothing
    python <peer>_bench.py enqueue_waiting <n>  queue n jobs that each wait 20 ms
    python <peer>_bench.py processor <c>        work the queue, c jobs at a time, until
                                                SIGTERM (some peers' own worker command)

A creator prints {"seconds": ...}. REDIS_URL says where; BENCH_STAMPS, where the jobs'
stamps go (stamps.py).
"""

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

QUEUE = "bench"
NOTIFY = "notify"  # the job that does nothing, as the other stacks' do
WAIT_20MS = "wait_20ms"  # the job that waits 20 ms, as a gateway's call would
WAIT_SECONDS = 0.02
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def job_data(n: int) -> dict:
    return {"phoneNumber": "4153518780", "message": f"This is the code {n}"}


def main(enqueue: Callable[[str, int], None], processor: Callable[[int], None]) -> None:
    """Run the workload that the command line names: `enqueue(job name, n)` timed, or
    `processor(c)`."""
    workload, number = sys.argv[1], int(sys.argv[2])
    if workload == "processor":
        processor(number)
        return
    name = {"enqueue_burst": NOTIFY, "enqueue_waiting": WAIT_20MS}[workload]
    start = time.perf_counter()
    enqueue(name, number)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def exec_worker_command(*args: str) -> None:
    """Become the peer's own worker command, `python -m <args>`, run from this folder so
    that it imports the peer's script as a module, as a user starts one."""
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = here
    os.chdir(here)
    os.execv(sys.executable, [sys.executable, "-m", *args])
