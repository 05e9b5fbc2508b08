"""What losing the primary costs the stock app, for bench/run.py: `./serve.sh 9_stock`
on a Sentinel REDIS_URL, a few clients reserving one after another with a pause (a
steady load, not a throughput test), on the set of `./install_redis.sh --sentinel` (a
primary, two replicas, three sentinels, its script's down-after-milliseconds), with no
one acting once the primary is lost:

- a kill: SIGKILL to the primary, which stays dead until the figures are taken (the
  new primary confirms writes with the other replica); only then is it started again,
  and rejoins as a replica, so that the next run has the whole set;
- a freeze: SIGSTOP to the primary (a machine that hangs, a network that drops every
  packet), held until reservations are confirmed again or down-after + FREEZE_EXTRA
  seconds, then SIGCONT: the sentinels turn the old primary into a replica.

Measured from the kill (the freeze): when the sentinels named the new primary, and when
a reservation sent after the kill (the freeze) was first confirmed; the requests that
failed, and whether each got a clear JSON 503; and that the stock taken on the primary
covers every confirmation (nothing confirmed lost).
"""

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bench.processes import Running
from harness.net import accepts_connections, free_port
from harness.paced_clients import PacedClients
from harness.sentinel import ReplicatedRedis, role
from harness.waiting import wait_until

PRODUCT = "/reserve_product/1"
STOCK_KEY = "item.1"
STOCK = 1_000_000  # never runs out here: every answer is a confirmation or a failure
CONFIRMED = b'{"status":"Reservation confirmed","itemId":1}'
CLIENTS, PAUSE = 4, 0.05  # four clients, 50 ms between a client's answer and its next request
STEADY = 20  # confirmations before the kill, and after the first one that follows it
TIMEOUT = 60  # seconds for any of the steps
# A freeze is held at most down-after + this many seconds: past the sentinels' vote and
# the apps' 3 s socket timeout, so that the failover happens while it lasts.
FREEZE_EXTRA = 10

Answers = list[tuple[float, float, int | None, bytes]]


def confirmed_since(clients: PacedClients, moment: float) -> list[float]:
    """When the requests sent after `moment` were confirmed."""
    return [done for sent, done, _, body in clients.answers() if sent > moment and ok(body)]


def ok(body: bytes) -> bool:
    return body == CONFIRMED


def clear_refusal(status: int | None, body: bytes) -> bool:
    """A 503 whose body is JSON with a status, as the apps answer when Redis is lost."""
    if status != 503:
        return False
    try:
        return isinstance(json.loads(body).get("status"), str)
    except (ValueError, AttributeError):
        return False


def within(condition: Callable[[], object], seconds: float) -> float | None:
    """`condition` checked until it holds: the moment it did (monotonic), or None if it
    did not within `seconds` (a figure the report shows as missing, not an error)."""
    try:
        wait_until(condition, max(seconds, 0), every=0.05)
    except AssertionError:
        return None
    return time.monotonic()


def since(moment: float, start: float | None) -> float | None:
    return None if moment is None or start is None else round(moment - start, 3)


@contextmanager
def paced_load(replicated: ReplicatedRedis, serve: Callable, env: dict) -> Iterator[PacedClients]:
    """9_stock served on the set, the paced clients reserving, STEADY confirmed; the
    clients stopped when the block ends (the server with them)."""
    with replicated.primary().client() as client:
        client.set(STOCK_KEY, STOCK)
    port = free_port()
    with Running(serve("9_stock", port), env):
        wait_until(lambda: accepts_connections(port), 60, "9_stock served")
        clients = PacedClients(port, PRODUCT, CLIENTS, PAUSE)
        try:
            steady = f"{STEADY} reservations confirmed"
            wait_until(lambda: len(confirmed_since(clients, 0)) >= STEADY, TIMEOUT, steady)
            yield clients
        finally:
            clients.stop()


def promotion(replicated: ReplicatedRedis, old_port: int, seconds: float) -> float | None:
    """When the sentinels all named another primary than `old_port`, answering as one:
    polled every 50 ms, and the one that led the failover names it a little before the
    others, so a reservation may be confirmed on it a few ms before this moment."""
    try:
        replicated.wait_for_failover(old_port, max(seconds, 0))
    except AssertionError:
        return None
    return time.monotonic()


def stock_taken(replicated: ReplicatedRedis) -> int:
    with replicated.primary().client() as client:
        return STOCK - int(client.get(STOCK_KEY))


def checked(answers: Answers, event_at: float, taken: int) -> dict:
    """What the answers of a run tell, `event_at` the kill or the freeze."""
    confirmed = sum(ok(body) for _, _, _, body in answers)
    after = [done for sent, done, _, body in answers if sent > event_at and ok(body)]
    failed = [(status, body) for _, _, status, body in answers if not ok(body)]
    unclear = [answer for answer in failed if not clear_refusal(*answer)]
    before = [answer for answer in answers if answer[1] < event_at]
    first = min(after) if after else float("inf")
    refused = [(sent, done, status, body) for sent, done, status, body in answers if not ok(body)]
    kinds = Counter(
        f"{status} {body[:60].decode(errors='replace')}" for *_, status, body in refused
    )
    return {
        "first_confirmed_s": since(min(after), event_at) if after else None,
        "requests": len(answers),
        "failed": len(failed),
        "failed_before": sum(done < event_at for _, done, _, _ in refused),
        # Answered after the kill (the freeze), sent before the first confirmation that
        # followed it (a request held by a frozen primary may be answered after it).
        "failed_meanwhile": sum(done >= event_at and sent <= first for sent, done, *_ in refused),
        # Sent once reservations were confirmed again (after a thaw, say).
        "failed_after": sum(sent > first for sent, *_ in refused),
        "failed_answers": dict(kinds.most_common()),
        "unclear": len(unclear),
        "unclear_examples": sorted({f"{status} {body[:80]!r}" for status, body in unclear})[:3],
        "confirmed": confirmed,
        "confirmed_before": sum(ok(body) for _, _, _, body in before),
        "stock_taken": taken,
        "lost": max(0, confirmed - taken),  # confirmed, yet not taken: at least this many
        # Taken and answered 503: a loss between a write and its WAIT (docs/failover.md).
        "taken_unconfirmed": max(0, taken - confirmed),
        "right": taken >= confirmed and not unclear and bool(after),
    }


def one_kill(replicated: ReplicatedRedis, serve: Callable, env: dict) -> dict:
    """One kill of the primary under paced load, measured before anyone restarts it;
    the set whole and settled again (the old primary a replica) when it returns."""
    with paced_load(replicated, serve, env) as clients:
        # Timed from the moment the process is gone (kill_primary waits for it): a
        # request sent before may still have been served by it.
        killed = replicated.kill_primary()
        killed_at = time.monotonic()
        promoted_at = promotion(replicated, killed.port, TIMEOUT)
        within(lambda: len(confirmed_since(clients, killed_at)) >= STEADY, TIMEOUT)
    answers = clients.answers()
    figures = checked(answers, killed_at, stock_taken(replicated))
    restarted = time.monotonic()
    replicated.restart(killed, TIMEOUT)  # returns once the sentinels see it a replica
    return {
        "promoted_s": since(promoted_at, killed_at),
        **figures,
        "restarted_to_settled_s": round(time.monotonic() - restarted, 3),
    }


def one_freeze(replicated: ReplicatedRedis, serve: Callable, env: dict, down_after_ms: int) -> dict:
    """One SIGSTOP of the primary under paced load, held until reservations are
    confirmed again (STEADY of them) or down-after + FREEZE_EXTRA s, then SIGCONT;
    measured until the old primary is a replica and the set settled."""
    with paced_load(replicated, serve, env) as clients:
        frozen = replicated.primary()
        replicated.freeze(frozen)
        frozen_at = time.monotonic()
        bound = frozen_at + down_after_ms / 1000 + FREEZE_EXTRA
        try:
            promoted_at = promotion(replicated, frozen.port, bound - time.monotonic())
            resumed = lambda: len(confirmed_since(clients, frozen_at)) >= STEADY  # noqa: E731
            within(resumed, bound - time.monotonic())
        finally:
            replicated.thaw(frozen)
        thawed_at = time.monotonic()
        demoted_at = None
        if promoted_at is not None:  # else it is still the primary, rightly
            demoted_at = within(lambda: role(frozen) == "slave", TIMEOUT)
        replicated.wait_settled(TIMEOUT)
        # Answers past the thaw and the demotion, checked with the others.
        settled_at = time.monotonic()
        within(lambda: len(confirmed_since(clients, settled_at)) >= STEADY, TIMEOUT)
    answers = clients.answers()
    figures = checked(answers, frozen_at, stock_taken(replicated))
    return {
        "promoted_s": since(promoted_at, frozen_at),
        **figures,
        "frozen_s": round(thawed_at - frozen_at, 3),
        "demoted_after_thaw_s": since(demoted_at, thawed_at),
        "old_primary_role": role(frozen),
        "right": figures["right"] and (promoted_at is None or demoted_at is not None),
    }


def measure(
    replicated: ReplicatedRedis, serve: Callable, env: dict, runs: int, down_after_ms: int
) -> dict:
    """`runs` kills and `runs` freezes, in turns: the median of each time (a run that
    never got there counts as missing), every run's figures."""
    replicas = len(replicated.servers) - 1
    print(
        f"Failover, no one acting ({replicas} replicas, down-after {down_after_ms} ms; "
        f"{CLIENTS} clients, {PAUSE * 1000:.0f} ms apart, GET {PRODUCT}):",
        flush=True,
    )
    measured: dict[str, list[dict]] = {"kill": [], "freeze": []}
    for run in range(runs):
        measured["kill"].append(one_kill(replicated, serve, env))
        print(f"  kill, run {run + 1}: {describe(measured['kill'][-1])}", flush=True)
        measured["freeze"].append(one_freeze(replicated, serve, env, down_after_ms))
        print(f"  freeze, run {run + 1}: {describe(measured['freeze'][-1])}", flush=True)
    return {
        "replicas": replicas,
        "down_after_ms": down_after_ms,
        "clients": CLIENTS,
        "pause_s": PAUSE,
        "freeze_extra_s": FREEZE_EXTRA,
        **{event: summary(figures) for event, figures in measured.items()},
    }


def summary(runs: list[dict]) -> dict:
    times = ("promoted_s", "first_confirmed_s")
    if "demoted_after_thaw_s" in runs[0]:
        times += ("frozen_s", "demoted_after_thaw_s")
    return {
        **{key: median_of(run[key] for run in runs) for key in times},
        "failed": statistics.median(run["failed"] for run in runs),
        "unclear": sum(run["unclear"] for run in runs),
        "lost": sum(run["lost"] for run in runs),
        "right": all(run["right"] for run in runs),
        "runs": runs,
    }


def median_of(values: Iterator[float | None]) -> float | None:
    """The median, None if any run lacks the figure (it never got there)."""
    values = list(values)
    return None if None in values else statistics.median(values)


def seconds(value: float | None) -> str:
    return "NEVER" if value is None else f"{value:.2f} s"


def describe(run: dict) -> str:
    clear = "every one a JSON 503" if not run["unclear"] else f"{run['unclear']} NOT a JSON 503"
    lost = "none lost" if not run["lost"] else f"{run['lost']} MORE CONFIRMED THAN TAKEN"
    line = (
        f"promoted {seconds(run['promoted_s'])}, first reservation confirmed "
        f"{seconds(run['first_confirmed_s'])} after it; {run['failed']} of {run['requests']} "
        f"requests failed, {run['failed_meanwhile']} of them meanwhile ({clear}); "
        f"{run['confirmed']:,} confirmed, stock down {run['stock_taken']:,} ({lost})"
    )
    if "frozen_s" in run:
        line += (
            f"; SIGCONT after {run['frozen_s']:.2f} s, a replica "
            f"{seconds(run['demoted_after_thaw_s'])} later (ROLE {run['old_primary_role']})"
        )
    return line
