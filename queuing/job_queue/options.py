"""Kue's job options (priority, delay, attempts with backoff, TTL, removal), checked
before anything is queued, and what each becomes in RQ's terms.

- priority: a queue of its own per level, `<queue>:<level>` (`push_notification_code_2:high`);
  the normal level (0) is the queue itself. A worker of `<queue>` works its levels too,
  the highest first (JobWorker reads them from `job_queue:priorities:<queue>`).
- delay: the job waits in RQ's ScheduledJobRegistry of its queue (status `scheduled`),
  promoted to the queue when due (promoting.py).
- attempts and backoff: RQ's `Retry(max=attempts - 1, interval=[waits])`.
- ttl: RQ's `job_timeout`; a job past it fails with "TTL exceeded".
- remove_on_complete / remove_on_fail: RQ's `result_ttl` / `failure_ttl` (0: at once);
  BullMQ's `{"age": seconds, "count": n}`: the age as the TTL, and the queue's finished
  (failed) registry trimmed to its last n once the job has ended (keeping.py).
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rq import Retry

# Kue's priority map: the lower, the sooner.
PRIORITIES = {"low": 10, "normal": 0, "medium": -5, "high": -10, "critical": -15}
PRIORITY_NAMES = {number: name for name, number in PRIORITIES.items()}
# The levels a queue's jobs were given (a sorted set, scored by level), for its workers.
PRIORITIES_KEY = "job_queue:priorities:{queue}"
BACKOFF_TYPES = ("fixed", "exponential")
TTL_EXCEEDED = "TTL exceeded"

Backoff = bool | Mapping[str, Any] | Callable[[int, float], float] | None
Seconds = int | float | timedelta


class BadJobOption(ValueError):
    """An option that cannot be honoured; the message names it. Nothing was queued."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"{option}: {problem}")
        self.option = option


@dataclass(frozen=True)
class JobOptions:
    """A job's Kue options, checked (see job_options)."""

    priority: int = 0
    delay: float = 0.0  # seconds from its creation until it may run
    attempts: int = 1
    waits: tuple[float, ...] = ()  # before each retry, in seconds (attempts - 1 of them)
    ttl: int | None = None  # seconds it may run; None: the creator's default timeout
    # True: at once; a number: kept that many seconds; a Removal: kept so long, or so many
    remove_on_complete: "bool | int | Removal" = False
    remove_on_fail: "bool | int | Removal" = False
    given: dict = field(default_factory=dict)  # as the caller gave them, for lookups

    def retry(self) -> Retry | None:
        """RQ's Retry for the attempts after the first. RQ stores a retry's time in whole
        seconds, rounded down: each wait is asked one second longer (then rounded up), so
        that a retry never runs early, and at most a second late."""
        if self.attempts <= 1:
            return None
        intervals = [math.ceil(wait) + 1 if wait > 0 else 0 for wait in self.waits]
        return Retry(max=self.attempts - 1, interval=intervals)

    def rq_arguments(self, default_timeout: int) -> dict[str, Any]:
        """Job.create's arguments for these options."""
        arguments: dict[str, Any] = {"timeout": self.ttl or default_timeout}
        if (kept_for := _kept_for(self.remove_on_complete)) is not None:
            arguments["result_ttl"] = kept_for
        if (kept_for := _kept_for(self.remove_on_fail)) is not None:
            arguments["failure_ttl"] = kept_for
        if (retry := self.retry()) is not None:
            arguments["retry"] = retry
        return arguments


NO_OPTIONS = JobOptions()


def job_options(
    priority: str | int = "normal",
    delay: Seconds | datetime = 0,
    attempts: int = 1,
    backoff: Backoff = None,
    ttl: Seconds | None = None,
    remove_on_complete: bool | Seconds | Mapping[str, Any] = False,
    remove_on_fail: bool | Seconds | Mapping[str, Any] = False,
) -> JobOptions:
    """Check Kue's options (seconds where Kue takes milliseconds); BadJobOption names
    the first that cannot be honoured."""
    given = {
        "priority": priority,
        "delay": delay,
        "attempts": attempts,
        "backoff": backoff,
        "ttl": ttl,
        "remove_on_complete": remove_on_complete,
        "remove_on_fail": remove_on_fail,
    }
    defaults = dict(zip(given, job_options.__defaults__, strict=True))
    given = {name: value for name, value in given.items() if value is not defaults[name]}
    delay_seconds = _delay(delay)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise BadJobOption("attempts", f"a whole number of at least 1, not {attempts!r}")
    return JobOptions(
        priority=_priority(priority),
        delay=delay_seconds,
        attempts=attempts,
        waits=_waits(backoff, attempts, delay_seconds),
        ttl=None if ttl is None else _ttl(ttl),
        remove_on_complete=_removal("remove_on_complete", remove_on_complete),
        remove_on_fail=_removal("remove_on_fail", remove_on_fail),
        given={name: _shown(value) for name, value in given.items()},
    )


def _priority(priority: str | int) -> int:
    if isinstance(priority, str) and priority in PRIORITIES:
        return PRIORITIES[priority]
    if isinstance(priority, int) and not isinstance(priority, bool):
        return priority
    names = ", ".join(PRIORITIES)
    raise BadJobOption("priority", f"one of {names}, or a whole number; not {priority!r}")


def _seconds(option: str, value: Any) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise BadJobOption(option, f"a number of seconds or a timedelta, not {value!r}")


def _delay(delay: Seconds | datetime) -> float:
    """Seconds from now; a date in the past is no delay (as Kue's)."""
    if isinstance(delay, datetime):
        return max(0.0, delay.timestamp() - datetime.now().timestamp())
    seconds = _seconds("delay", delay)
    if seconds < 0:
        raise BadJobOption("delay", f"must not be negative, not {delay!r}")
    return seconds


def _ttl(ttl: Seconds) -> int:
    seconds = _seconds("ttl", ttl)
    if seconds <= 0:
        raise BadJobOption("ttl", f"must be above 0, not {ttl!r}")
    return math.ceil(seconds)  # RQ's timeouts are whole seconds


@dataclass(frozen=True)
class Removal:
    """BullMQ's KeepJobs: the job kept `age` seconds at most (None: for ever), and the
    queue's ended jobs of its kind trimmed to the last `count` (None: all)."""

    age: int | None = None
    count: int | None = None


def _removal(option: str, value: Any) -> "bool | int | Removal":
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"age", "count"}
        if unknown or not value:
            raise BadJobOption(option, f"a dict of age and count, not {value!r}")
        count = value.get("count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise BadJobOption(option, f"count must be a whole number, not {count!r}")
        if count is not None and count < 0:
            raise BadJobOption(option, f"count must not be negative, not {count!r}")
        age = value.get("age")
        return Removal(None if age is None else _age(option, age), count)
    return _age(option, value)


def _age(option: str, value: Any) -> int:
    seconds = _seconds(option, value)
    if seconds < 0:
        raise BadJobOption(option, f"True, False or the seconds to keep it, not {value!r}")
    return math.ceil(seconds)


def _kept_for(removal: "bool | int | Removal") -> int | None:
    """RQ's result_ttl or failure_ttl for a removal option (None: RQ's default)."""
    if removal is False:
        return None
    if removal is True:
        return 0
    if isinstance(removal, Removal):
        return removal.age
    return int(removal)


def kept_count(options: Mapping[str, Any], finished: bool) -> int | None:
    """The `count` of a job's removal option, as stored with it (job.meta["options"]):
    how many of its queue's finished (or failed) jobs to keep once it has ended."""
    removal = options.get("remove_on_complete" if finished else "remove_on_fail")
    return removal.get("count") if isinstance(removal, Mapping) else None


def _waits(backoff: Backoff, attempts: int, delay: float) -> tuple[float, ...]:
    """The wait before each retry, as Kue's backoff computes it: none without a backoff;
    True: the job's own delay each time; {"type": "fixed", "delay": d}; {"type":
    "exponential", "delay": d, "max_delay": m}: d/2 * (2^k - 1) after the k-th failure;
    a function (attempts made, last wait) -> the next wait."""
    retries = attempts - 1
    if backoff is None or backoff is False:
        return (0.0,) * retries
    if backoff is True:
        return (delay,) * retries
    if callable(backoff):
        return _waits_of(backoff, retries, delay)
    if not isinstance(backoff, Mapping):
        raise BadJobOption("backoff", f"True, a dict with a type, or a function; not {backoff!r}")
    kind = backoff.get("type", "fixed")
    if kind not in BACKOFF_TYPES:
        types = ", ".join(BACKOFF_TYPES)
        raise BadJobOption("backoff", f"type must be one of {types}, not {kind!r}")
    base = _seconds("backoff", backoff.get("delay", delay))
    if base < 0:
        raise BadJobOption("backoff", f"delay must not be negative, not {base!r}")
    if kind == "fixed":
        return (base,) * retries
    most = _seconds("backoff", backoff["max_delay"]) if "max_delay" in backoff else math.inf
    return tuple(min(most - base / 2, base / 2 * (2**k - 1)) for k in range(1, attempts))


def _waits_of(backoff: Callable[[int, float], float], retries: int, delay: float) -> tuple:
    waits, last = [], delay
    for made in range(1, retries + 1):
        try:
            last = _seconds("backoff", backoff(made, last))
        except BadJobOption:
            raise
        except Exception as error:
            raise BadJobOption("backoff", f"the function raised {error!r}") from error
        waits.append(max(0.0, last))
    return tuple(waits)


def _shown(value: Any) -> Any:
    """An option as a lookup shows it (JSON)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        return value.isoformat()
    if callable(value):
        return getattr(value, "__qualname__", repr(value))
    if isinstance(value, Mapping):
        return {str(k): _shown(v) for k, v in value.items()}
    return value


def priority_queue_name(queue_name: str, priority: int) -> str:
    """The queue of a priority level: the queue itself for normal (0)."""
    if priority == 0:
        return queue_name
    return f"{queue_name}:{PRIORITY_NAMES.get(priority, priority)}"


def base_queue_name(queue_name: str) -> str:
    """The queue whose level `queue_name` is (the name itself for the normal level)."""
    base, _, level = queue_name.rpartition(":")
    if base and (level in PRIORITIES or _is_number(level)):
        return base
    return queue_name


def priority_of(queue_name: str) -> int:
    base, _, level = queue_name.rpartition(":")
    if base and level in PRIORITIES:
        return PRIORITIES[level]
    if base and _is_number(level):
        return int(level)
    return 0


def _is_number(text: str) -> bool:
    return text.lstrip("-").isdigit()


def priorities_key(queue_name: str) -> str:
    return PRIORITIES_KEY.format(queue=base_queue_name(queue_name))
