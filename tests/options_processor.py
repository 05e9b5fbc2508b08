"""A processor of the queue `options` for the tests of Kue's options, as a course
processor runs: `work()`, two jobs at a time, until Ctrl-C. SHUTDOWN_TIMEOUT (seconds)
is Kue's queue.shutdown(timeout); PROCESSES (1) the worker processes, two jobs at a time
each: with 2, one of them killed, the other one finds its jobs abandoned."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, to import

from queuing.job_queue import work
from queuing.redis_connection import create_client, run


def main() -> None:
    timeout = os.environ.get("SHUTDOWN_TIMEOUT")
    connection = create_client(decode_responses=False)
    processes = int(os.environ.get("PROCESSES", "1"))
    shutdown_timeout = float(timeout) if timeout else None
    work(["options"], connection, workers=2, shutdown_timeout=shutdown_timeout, processes=processes)


if __name__ == "__main__":
    run(main)
