"""What every script of the course shares: where Redis is, node_redis's connect and
error lines, its `redis.print`, and a clean way to run a script.

node_redis connects in the background, prints an error line on each failed attempt and
keeps retrying; a script here does the same before its first command, then goes on.

REDIS_URL is a plain `redis://host:port/db`, or, for a primary watched by Sentinel,
`redis+sentinel://host:port[,host:port...]/<master name>/<db>` (the form rq-dashboard
reads too): the client then asks the sentinels where the primary is, and asks again
once it is lost, so a failover needs no restart. With Sentinel, a write the apps
confirm is first confirmed by a replica (see `replicas_to_confirm`).
"""

import asyncio
import inspect
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis_sentinel_url
from redis.connection import Connection
from redis.sentinel import Sentinel, SentinelManagedConnection

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CONNECTED = "Redis client connected to the server"
RETRY_EVERY_SECONDS = 1.0
# Without it a connect to a host that drops packets hangs for minutes.
CONNECT_TIMEOUT_SECONDS = 2.0

SENTINEL_SCHEME = "redis+sentinel://"
# How long a confirmed write waits for its replicas (WAIT) before it is refused.
CONFIRM_TIMEOUT_MS = 1000


class NoReplica(redis.ConnectionError):
    """A primary that refuses writes until a replica is back (min-replicas-to-write),
    or a write no replica confirmed in time: as good as unreachable for the moment."""


# What a lost or unreachable server raises (AuthenticationError, Sentinel's
# MasterNotFoundError and NoReplica are ConnectionErrors).
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def not_connected(error: BaseException) -> str:
    return f"Redis client not connected to the server: {error}"


def create_client(
    decode_responses: bool = True, socket_timeout: float | None = None
) -> redis.Redis:
    """A client for REDIS_URL; it connects on its first command.

    RQ stores pickled bytes: its connection needs `decode_responses=False`. With a
    `socket_timeout`, a command whose answer takes longer fails (TimeoutError) and its
    connection is dropped: a server that hangs holds no caller longer than that.
    """
    return _from_url(redis.Redis, decode_responses, socket_timeout)


def create_async_client() -> redis.asyncio.Redis:
    return _from_url(redis.asyncio.Redis, decode_responses=True)


def _from_url(
    client_class: type, decode_responses: bool, socket_timeout: float | None = None
) -> Any:
    url = redis_url()
    replicas = os.environ.get("REDIS_CONFIRM_REPLICAS") or "0"
    if not replicas.isdigit():
        sys.exit(f"Invalid REDIS_CONFIRM_REPLICAS {replicas!r}: a number of replicas, 0 or more")
    options = {"decode_responses": decode_responses}
    options["socket_connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    options["socket_timeout"] = socket_timeout
    try:
        if url.startswith(SENTINEL_SCHEME):
            return _primary_of_sentinels(url, client_class, options)
        return client_class.from_url(url, **options)
    except ValueError as error:
        sys.exit(f"Invalid REDIS_URL {url!r}: {error}")


def _primary_of_sentinels(url: str, client_class: type, options: dict) -> Any:
    """A client of the primary the sentinels of the URL name, found again on each new
    connection."""
    # A sentinel that stops answering must not hold a caller forever.
    timeouts = {"socket_connect_timeout": CONNECT_TIMEOUT_SECONDS}
    timeouts["socket_timeout"] = CONNECT_TIMEOUT_SECONDS
    parsed = redis_sentinel_url.parse_sentinel_url(
        url, sentinel_options=timeouts, client_options=options
    )
    master_name = parsed.default_client.service
    if not master_name or parsed.default_client.type != "master":
        raise ValueError("give the primary's name: redis+sentinel://host:port/<name>/<db>")
    if issubclass(client_class, redis.asyncio.Redis):
        sentinels = redis.asyncio.sentinel.Sentinel(
            parsed.hosts, sentinel_kwargs=parsed.sentinel_options, **parsed.client_options
        )
        return sentinels.master_for(master_name, redis_class=client_class)
    sentinels = Sentinel(
        parsed.hosts, sentinel_kwargs=parsed.sentinel_options, **parsed.client_options
    )
    return sentinels.master_for(
        master_name, redis_class=client_class, connection_class=_PrimaryConnection
    )


class _PrimaryConnection(SentinelManagedConnection):
    """A connection to the sentinels' primary, on which a primary without its replicas
    (NOREPLICAS) is as unreachable as a lost one: callers wait, or answer 503."""

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        # redis-py 8.1.0 reconnects a connection that lost its server here, to the
        # address it had, bypassing SentinelManagedConnection.connect: one held across
        # a failover (a worker's own) would go back to the old primary for ever.
        if self._sock is None:
            self.connect()
        super().send_packed_command(command, check_health)

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except UNREACHABLE:
            self.disconnect()  # redis-py's Sentinel connection keeps the dead socket
            raise
        except redis.ResponseError as error:
            if str(error).startswith("NOREPLICAS"):
                raise NoReplica(str(error).split(" script:")[0]) from error
            raise


def replicas_to_confirm(client: redis.Redis) -> int:
    """How many replicas must have a write before it is confirmed to a user:
    REDIS_CONFIRM_REPLICAS if set, else 1 for a primary watched by Sentinel (one is
    promoted when the primary dies: it must have what was confirmed), else 0."""
    if chosen := os.environ.get("REDIS_CONFIRM_REPLICAS"):
        return int(chosen)
    connection_class = client.connection_pool.connection_class
    return 1 if issubclass(connection_class, SentinelManagedConnection) else 0


class NotConfirmed(NoReplica):
    """No replica confirmed a write in time; `reply` is what the write answered, for
    the caller to undo it."""

    def __init__(self, reply: Any) -> None:
        super().__init__("no replica confirmed the write in time")
        self.reply = reply


# Takes back a write no replica confirmed: given the connection that made it and the
# write's reply.
Undo = Callable[[Connection, Any], None]


def confirm_on(
    connection: Connection, client: redis.Redis, reply: Any, undo: Undo | None = None
) -> Any:
    """`reply`, once the replicas the client needs have the write just made on this
    connection (WAIT counts that connection's writes); else NotConfirmed, after
    `undo(connection, reply)` if given.

    The undo goes on this same connection: to the server that has the write, and to no
    other. Past a failover another server may be the primary, holding other data under
    the same keys (a primary that woke from a freeze takes writes until the sentinels
    turn it into a replica); an undo sent there would take back what it never had. An
    undo cut off, or refused by a server turned replica, is left: its write goes with
    that server, or stays as a write no one was told of (docs/failover.md)."""
    if replicas := replicas_to_confirm(client):
        connection.send_command("WAIT", replicas, CONFIRM_TIMEOUT_MS)
        if connection.read_response() < replicas:
            if undo is not None:
                try:
                    undo(connection, reply)
                except (*UNREACHABLE, redis.ReadOnlyError):
                    connection.disconnect()  # its answer may be on its way
            raise NotConfirmed(reply)
    return reply


def confirmed_command(client: redis.Redis, *command: Any) -> Any:
    """One write, confirmed as `confirm_on` says."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_command(*command)
        return confirm_on(connection, client, connection.read_response())
    except UNREACHABLE:
        connection.disconnect()  # a reply may be on its way
        raise
    finally:
        pool.release(connection)


def settings_for_rq() -> dict[str, Any]:
    """RQ's CLI settings (`rq worker -c rq_settings`) for REDIS_URL."""
    url = redis_url()
    if not url.startswith(SENTINEL_SCHEME):
        return {"REDIS_URL": url}
    parsed = redis_sentinel_url.parse_sentinel_url(url)
    instances = parsed.hosts
    sentinel = {"INSTANCES": instances, "MASTER_NAME": parsed.default_client.service}
    sentinel |= {"DB": parsed.client_options.get("db", 0)}
    return {"SENTINEL": sentinel}


def wait_until_connected(client: redis.Redis) -> None:
    """Print the connected line once PING answers, the error line on each failed try."""
    while True:
        try:
            client.ping()
        except UNREACHABLE as error:
            print(not_connected(error))
            time.sleep(RETRY_EVERY_SECONDS)
        else:
            print(CONNECTED)
            return


async def wait_until_connected_async(client: redis.asyncio.Redis) -> None:
    while True:
        try:
            await client.ping()
        except UNREACHABLE as error:
            print(not_connected(error))
            await asyncio.sleep(RETRY_EVERY_SECONDS)
        else:
            print(CONNECTED)
            return


def lean_command(client: redis.Redis, *args: Any) -> Any:
    """Send one command on a connection of the client's pool, without the wrappers
    redis-py's client puts around each command (retries, events, metrics: some 50 µs,
    half of a trivial request). A connection that lost its server is replaced when
    taken from the pool, as for any command."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_command(*args)
        return connection.read_response()
    except UNREACHABLE:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)


def redis_print(reply: Any) -> None:
    """node_redis's `redis.print`: `Reply: <reply>`."""
    # redis-py turns the server's status reply OK into True; node_redis shows it as sent.
    print(f"Reply: {'OK' if reply is True else reply}")


def run(main: Callable[[], Any]) -> NoReturn:
    """Run a script's main (plain or async) and exit with no traceback for what is
    expected: Ctrl-C, a lost Redis, an error reply, a closed pipe."""
    sys.stdout.reconfigure(line_buffering=True)  # lines show up at once, even in a pipe
    try:
        if inspect.iscoroutinefunction(main):
            asyncio.run(main())
        else:
            main()
    except KeyboardInterrupt:
        sys.exit(130)
    except UNREACHABLE as error:
        print(not_connected(error))
        sys.exit(1)
    except redis.ResponseError as error:
        print(f"Error: {error}")  # how redis.print shows an error reply
        sys.exit(1)
    except BrokenPipeError:
        # The reader went away (`| head`); say nothing more to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(0)
