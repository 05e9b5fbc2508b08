"""The app's side: QueueListener hears how every job of a queue ends, whoever created it,
the listeners of one group sharing the queue's events."""

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from rq import Queue

from queuing.job_queue.creator import Handler
from queuing.job_queue.events import (
    blocking_client,
    clean_up_abandoned_jobs,
    decode,
    events_key,
    log,
)
from queuing.redis_connection import UNREACHABLE, confirmed_command, not_connected


class QueueListener:
    """Hears how every job of a queue ends, whoever created it: for an app served by
    several processes, where the process that queued a job may be gone when it ends.

    The listeners of one group share the queue's events (a Redis consumer group): each
    end is given to one of them, and one given to a listener whose process died before
    it took it is taken over by another after CLAIM_AFTER_SECONDS. Each job ends once
    in the stream (END_ONCE, and the worker's step), and an end is handled by the
    listener whose XACK took it, so each end is handled once. Handlers:
    `completed(job_id)`, `failed(job_id, error)`; one that raises is logged.
    `before_failed(job_id, error)` runs before the end is taken: for writes to Redis,
    idempotent (it may run again, in another listener), that must happen whatever
    becomes of this process; the handler after it then only prints. A listener's
    process killed between an XACK and the handler's print loses that one line: the
    end itself is in Redis. `every_check()`, if given, runs in the listener's thread
    every CHECK_EVERY_SECONDS.
    """

    CLAIM_AFTER_SECONDS = 10
    CHECK_EVERY_SECONDS = 5  # for ends taken but not handled, and abandoned jobs
    FORGET_AFTER_SECONDS = 3600  # listeners gone this long leave the group

    def __init__(
        self,
        queue: Queue,
        group: str,
        *,
        completed: Handler | None = None,
        failed: Handler | None = None,
        before_failed: Handler | None = None,
        every_check: Callable[[], None] | None = None,
    ) -> None:
        self.queue = queue
        self.connection: redis.Redis = queue.connection
        self.group = group
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.handlers = {"completed": completed, "failed": failed}
        self.before_taking = {"failed": before_failed}
        self.every_check = every_check
        self._key = events_key(queue.name)
        self._reader = blocking_client(queue.connection, self.CHECK_EVERY_SECONDS + 10)
        self._closed = threading.Event()
        self._next_check = 0.0
        self._recovering = True  # first, what this listener was given and did not take
        self._unsure: list[tuple[Any, dict]] = []  # taken, maybe: the XACK was cut off

    @staticmethod
    def start_group(connection: redis.Redis, queue_name: str, group: str) -> None:
        """Start the group afresh, at the end of the queue's events (an app's launch)."""
        with connection.pipeline() as pipe:
            pipe.xgroup_destroy(events_key(queue_name), group)
            pipe.xgroup_create(events_key(queue_name), group, id="$", mkstream=True)
            pipe.execute(raise_on_error=False)

    def listen_in_background(self) -> threading.Thread:
        """Hear the ends in a thread of their own, from those of the jobs created once
        this has returned, if the group is new."""
        self._join_group()
        thread = threading.Thread(
            target=self._listen, name=f"ends of {self.queue.name}", daemon=True
        )
        thread.start()
        return thread

    def close(self) -> None:
        """Stop listening (within one read, 5 s at most)."""
        self._closed.set()

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                if self._recovering:
                    self._finish_what_was_cut_off()
                self._listen_once()
            except UNREACHABLE as error:
                self._recovering = True
                if not self._closed.is_set():
                    # The stream and the group keep the events: nothing is lost meanwhile.
                    print(not_connected(error), flush=True)
                    time.sleep(1)
            except Exception as error:  # an error reply, a job that cannot be loaded: go on
                if isinstance(error, redis.ResponseError) and "NOGROUP" in str(error):
                    # A Redis that lost its data: hear what comes from now on.
                    self._unsure.clear()
                    self._recovering = False
                    self._join_group()
                else:
                    log.exception("Listening to %s", self._key)
                    time.sleep(1)

    def _listen_once(self) -> None:
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self.CHECK_EVERY_SECONDS
            self._take_over_unhandled_ends()
            clean_up_abandoned_jobs(self.queue)
            if self.every_check is not None:
                self.every_check()
        self._handle_all(self._read(">", block=self.CHECK_EVERY_SECONDS * 1000))

    def _read(self, start: str, block: int | None = None) -> list:
        """Entries for this listener: new ones (">"), or those it was given and has not
        taken yet ("0")."""
        reply = self._reader.xreadgroup(
            self.group, self.consumer, {self._key: start}, count=100, block=block
        )
        return reply[0][1] if reply else []

    def _finish_what_was_cut_off(self) -> None:
        """Redis is back: handle what a lost connection left unsure. An end whose XACK
        went through but whose reply was lost is not pending any more: it was ours."""
        for entry_id, fields in self._unsure:
            pending = self.connection.xpending_range(
                self._key, self.group, min=entry_id, max=entry_id, count=1
            )
            # Gone with a primary that failed: its job ends again, with a new event.
            there = self.connection.xrange(self._key, min=entry_id, max=entry_id)
            if there and not pending:
                self._run_handler(fields, self.handlers)
        self._unsure.clear()
        while entries := self._read("0"):  # given to this listener, not yet taken
            self._handle_all(entries)
        self._recovering = False

    def _join_group(self) -> None:
        """Make the group if it is not there (an app not launched, or a Redis that lost
        its data), to hear what comes from now on."""
        try:
            self.connection.xgroup_create(self._key, self.group, id="$", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def _take_over_unhandled_ends(self) -> None:
        start = "0-0"
        while True:
            start, entries, *_ = self.connection.xautoclaim(
                self._key,
                self.group,
                self.consumer,
                self.CLAIM_AFTER_SECONDS * 1000,
                start_id=start,
                count=100,
            )
            for entry_id, fields in entries:
                self._handle(entry_id, fields)
            if decode(start) == "0-0":
                break
        for consumer in self.connection.xinfo_consumers(self._key, self.group):
            idle_seconds = consumer["idle"] / 1000
            if consumer["pending"] == 0 and idle_seconds > self.FORGET_AFTER_SECONDS:
                self.connection.xgroup_delconsumer(self._key, self.group, consumer["name"])

    def _handle_all(self, entries: list) -> None:
        for entry_id, fields in entries:
            self._handle(entry_id, fields)

    def _handle(self, entry_id: Any, fields: dict) -> None:
        """Take the end (XACK), then run its handler: only the listener whose XACK
        took it runs it, so an end is handled once even when Redis or a listener
        crashes in between (an XACK cut off by a crash is settled once Redis is back)."""
        self._run_handler(fields, self.before_taking)
        try:
            # Printed only once a replica has the XACK, and so the end before it: a
            # failover cannot bring back an end already printed.
            taken = confirmed_command(self.connection, "XACK", self._key, self.group, entry_id)
        except UNREACHABLE:
            self._unsure.append((entry_id, fields))
            raise
        if taken:
            self._run_handler(fields, self.handlers)

    def _run_handler(self, fields: dict, handlers: dict[str, Handler | None]) -> None:
        """Handlers may write to Redis, idempotently, before they print: a write that
        finds Redis gone is tried again until Redis is back."""
        event = {decode(k): decode(v) for k, v in fields.items()}
        handler = handlers.get(event.get("event", ""))
        if handler is None:
            return
        arguments = [event["job"], event["error"]] if event["event"] == "failed" else [event["job"]]
        while not self._closed.is_set():
            try:
                handler(*arguments)
                return
            except UNREACHABLE as error:
                print(not_connected(error), flush=True)
                time.sleep(1)
            except Exception:
                log.exception("Handler of %s for job %s", event["event"], event["job"])
                return
