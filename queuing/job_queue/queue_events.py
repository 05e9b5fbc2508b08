"""Every event of every job of a queue, whoever created it: Kue's queue-level events
(`queue.on('job complete', (id, result) => ...)`), BullMQ's QueueEvents."""

import threading
import time
from typing import Any

import redis
from rq import Queue

from queuing.job_queue.creator import (
    HANDLER_OF,
    Handler,
    call_handler,
    check_handlers,
    handler_arguments,
)
from queuing.job_queue.events import blocking_client, decode, events_key, log
from queuing.redis_connection import UNREACHABLE, not_connected

READ_BLOCK_SECONDS = 1.0  # how long a read waits for news: close() is seen within that


class QueueEvents:
    """Hears every event of the queue's jobs (and of its priority levels) from the moment
    it is made, or from the stream's start with `from_start=True`: the handlers of
    JobCreator (`completed(job_id, result)`, `failed_attempt(job_id, error, attempt)`,
    ...), called in the order the events were written.

    The events are read from the queue's stream by position, as a JobCreator reads them:
    none is lost to a slow handler or to Redis restarting meanwhile (the stream keeps
    them, EVENTS_KEPT of them). Each QueueEvents hears every event; the processes of one
    app that must share the ends instead use a QueueListener.
    """

    def __init__(self, queue: Queue, *, from_start: bool = False, **handlers: Handler) -> None:
        check_handlers("QueueEvents", handlers)
        self.queue = queue
        self.handlers = handlers
        self._key = events_key(queue.name)
        self._reader = blocking_client(queue.connection, READ_BLOCK_SECONDS + 10)
        self._closed = threading.Event()
        self._position = "0-0" if from_start else self._last_position(queue.connection)

    def _last_position(self, connection: redis.Redis) -> str:
        last = connection.xrevrange(self._key, count=1)
        return decode(last[0][0]) if last else "0-0"

    def listen(self) -> None:
        """Deliver events to the handlers until close()."""
        while not self._closed.is_set():
            try:
                self._deliver(self._read())
            except UNREACHABLE as error:
                if not self._closed.is_set():
                    print(not_connected(error), flush=True)
                    time.sleep(1)

    def listen_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.listen, name=f"events of {self._key}", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Stop listening, within READ_BLOCK_SECONDS."""
        self._closed.set()

    def _read(self) -> list[Any]:
        reply = self._reader.xread(
            {self._key: self._position}, count=1000, block=int(READ_BLOCK_SECONDS * 1000)
        )
        return reply[0][1] if reply else []

    def _deliver(self, entries: list[Any]) -> None:
        for entry_id, fields in entries:
            self._position = decode(entry_id)
            event = {decode(k): decode(v) for k, v in fields.items()}
            handler = self.handlers.get(HANDLER_OF.get(event.get("event", ""), ""))
            if handler is None:
                continue
            try:
                call_handler(handler, handler_arguments(event))
            except Exception:  # one handler's error must not stop the others' events
                log.exception("Handler of %s for job %s", event["event"], event["job"])
