"""Job timeouts for workers that run in a thread (an app's WorkerThread), where a signal
cannot stop a job: RQ's TimerDeathPenalty starts a thread per job for that, some 230 µs
of CPU a job on this project's machine, more than the seat app's job itself. Here one
thread watches every worker thread's job for the process, and sleeps until the nearest
deadline: a job that ends in time costs a dict write and a lock.

Past its deadline a job is stopped as RQ's TimerDeathPenalty stops it: the exception is
raised in the job's thread (PyThreadState_SetAsyncExc), at its next Python instruction.
"""

import ctypes
import threading
import time

from rq.timeouts import BaseDeathPenalty, JobTimeoutException


class _Deadlines:
    """The deadline of the job each worker thread runs, and the one thread that stops
    a job past it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: dict[int, tuple[float, type[BaseException]]] = {}  # thread id ->
        self._wakes_at = float("inf")  # when the watching thread looks next
        self._watcher: threading.Thread | None = None

    def watch(self, thread_id: int, seconds: float, exception: type[BaseException]) -> None:
        deadline = time.monotonic() + seconds
        with self._changed:
            self._due[thread_id] = (deadline, exception)
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(
                    target=self._watch, name="job timeouts", daemon=True
                )
                self._watcher.start()
            elif deadline < self._wakes_at:  # else it wakes in time anyway: no switch
                self._changed.notify()

    def unwatch(self, thread_id: int) -> None:
        with self._changed:
            self._due.pop(thread_id, None)

    def _watch(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for thread_id, (deadline, exception) in list(self._due.items()):
                    if deadline <= now:
                        del self._due[thread_id]
                        raise_in_thread(thread_id, exception)
                self._wakes_at = min((due for due, _ in self._due.values()), default=float("inf"))
                self._changed.wait(self._wakes_at - now if self._due else None)


def raise_in_thread(thread_id: int, exception: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception)
    )


_DEADLINES = _Deadlines()


class WatchedDeathPenalty(BaseDeathPenalty):
    """RQ's death penalty interface (a worker's `death_penalty_class`): the job in the
    `with` block is stopped with `exception` once `timeout` seconds have passed (none
    for a timeout of 0 or less, as RQ's)."""

    def __init__(
        self, timeout: int, exception: type[BaseException] = JobTimeoutException, **kwargs
    ) -> None:
        super().__init__(timeout, exception, **kwargs)
        self._thread_id = threading.get_ident()

    def setup_death_penalty(self) -> None:
        if self._timeout > 0:
            _DEADLINES.watch(
                self._thread_id, self._timeout, _with_message(self._exception, self._timeout)
            )

    def cancel_death_penalty(self) -> None:
        if self._timeout > 0:
            _DEADLINES.unwatch(self._thread_id)


_messaged: dict[tuple[type, int], type] = {}


def _with_message(exception: type[BaseException], timeout: int) -> type[BaseException]:
    """`exception` raised with RQ's message: an asynchronous exception is raised from its
    class alone, so the message goes into a subclass of the same name (RQ's own
    TimerDeathPenalty rewrites the class's __init__ instead, for every thread at once)."""
    key = (exception, timeout)
    if key not in _messaged:
        message = f"Task exceeded maximum timeout value ({timeout} seconds)"

        def __init__(self, *args: object) -> None:
            # Not exception.__init__: RQ's TimerDeathPenalty, if used in this process,
            # replaced it with one that gives its own timeout's message.
            BaseException.__init__(self, message)

        attributes = {"__init__": __init__, "__module__": exception.__module__}
        attributes["__qualname__"] = exception.__qualname__
        _messaged[key] = type(exception.__name__, (exception,), attributes)
    return _messaged[key]
