"""The stacks the job rows compare, as the harness sees them: the command of each one's
job workloads, and where it keeps what the harness reads (how many jobs finished, when
each started and ended). This port's here; the JS peers' in bench/peers.py."""

import sys
from collections.abc import Callable
from datetime import datetime

import redis

from bench.processes import PROJECT, Running


class Side:
    """One stack's job workloads, and where it keeps what the harness reads: how many
    jobs finished, and when each started and ended."""

    db = 0

    def __init__(
        self, command: Callable[..., list[str]], finished: str, job: str, start: str, end: str
    ) -> None:
        self.command = command  # (workload, argument) -> the command line
        self.finished_key, self.job_key, self.start, self.end = finished, job, start, end

    def clear(self) -> None:
        """Forget the last run's jobs, where they are not kept in Redis."""

    def finished(self, client: redis.Redis) -> int:
        return client.zcard(self.finished_key)

    def span(self, client: redis.Redis, count: int) -> float:
        """Seconds from the first job's start to the last job's end (ids 1 to count)."""
        with client.pipeline(transaction=False) as pipe:
            for job_id in range(1, count + 1):
                pipe.hmget(self.job_key.format(job_id), self.start, self.end)
            times = [(self.seconds(start), self.seconds(end)) for start, end in pipe.execute()]
        return max(end for _, end in times) - min(start for start, _ in times)

    def starts(self, client: redis.Redis, count: int) -> list[float]:
        """When each job (ids 1 to count) last started, in seconds since the epoch."""
        with client.pipeline(transaction=False) as pipe:
            for job_id in range(1, count + 1):
                pipe.hget(self.job_key.format(job_id), self.start)
            return [self.seconds(start) for start in pipe.execute()]

    def seconds(self, stored: bytes) -> float:
        raise NotImplementedError

    def ready(self, client: redis.Redis, processor: Running, concurrency: int) -> bool:
        raise NotImplementedError


class PythonSide(Side):
    """This port: bench/jobs.py's workloads, on job_queue and RQ's keys."""

    def __init__(self) -> None:
        jobs = [sys.executable, str(PROJECT / "bench" / "jobs.py")]
        command = lambda *args: [*jobs, *map(str, args)]  # noqa: E731
        super().__init__(command, "rq:finished:bench", "rq:job:{}", "started_at", "ended_at")

    def seconds(self, stored: bytes) -> float:
        return datetime.fromisoformat(stored.decode()[:-1] + "+00:00").timestamp()

    def ready(self, client: redis.Redis, processor: Running, concurrency: int) -> bool:
        return client.scard("rq:workers:bench") >= 1
