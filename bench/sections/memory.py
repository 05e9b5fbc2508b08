"""The memory row: Redis's memory per finished job, on each stack."""

from functools import partial

from bench.context import HARNESS, Bench
from bench.stacks import Side
from harness.waiting import wait_until


def rows(bench: Bench) -> list[dict]:
    count = bench.options.memory_jobs
    print(f"Redis memory ({count} jobs queued at once, worked 2 at a time):")
    by_side = {stack: partial(memory, bench, side) for stack, side in bench.sides.items()}
    return [bench.row("memory", "Redis memory per finished job", "bytes/job", by_side)]


def memory(bench: Bench, side: Side) -> dict:
    """Redis's used_memory, from an empty server to the queue drained (the processor
    stopped), per job. Every stack as its users run it: this port on the project's
    redis.conf, BullMQ with its events stream at its default length (10,000). A small
    run first loads the stack's Lua scripts, which stay across FLUSHALL."""
    count, env = bench.options.memory_jobs, {"BULLMQ_EVENTS_MAXLEN": "10000"}
    bench.redis.flushall()
    bench.work(side, 50, 2, **env)
    bench.redis.flushall()
    before = used_memory(bench)
    bench.work(side, count, 2, **env)
    after = used_memory(bench)
    return {"value": (after - before) / count, "before": before, "after": after}


def used_memory(bench: Bench) -> int:
    """Once the clients that came for the run have gone (their buffers count in
    used_memory) and no save or rewrite of the append-only file is under way; without
    the latency histogram Redis keeps for each command it has run (some 15 kB each,
    allocated at a command's first call and kept across FLUSHALL: CONFIG RESETSTAT
    frees them). MEMORY PURGE changes nothing here: it gives memory back to the
    system, and used_memory counts what is allocated."""

    def settled() -> bool:
        info = bench.redis.info("persistence")
        busy = info["rdb_bgsave_in_progress"] or info["aof_rewrite_in_progress"]
        others = [c for c in bench.redis.client_list() if c["name"] != HARNESS]
        return not busy and not others

    wait_until(settled, 60, "the run's clients gone, no save under way")
    bench.redis.config_resetstat()
    return bench.redis.info("memory")["used_memory"]
