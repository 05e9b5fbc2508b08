"""What every script of the course shares: where Redis is, node_redis's connect and
error lines, its `redis.print`, and a clean way to run a script.

node_redis connects in the background, prints an error line on each failed attempt and
keeps retrying; a script here does the same before its first command, then goes on.
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

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CONNECTED = "Redis client connected to the server"
RETRY_EVERY_SECONDS = 1.0
# Without it a connect to a host that drops packets hangs for minutes.
CONNECT_TIMEOUT_SECONDS = 2.0

# What a lost or unreachable server raises (AuthenticationError is a ConnectionError).
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def not_connected(error: BaseException) -> str:
    return f"Redis client not connected to the server: {error}"


def create_client(decode_responses: bool = True) -> redis.Redis:
    """A client for REDIS_URL; it connects on its first command.

    RQ stores pickled bytes: its connection needs `decode_responses=False`.
    """
    return _from_url(redis.Redis, decode_responses)


def create_async_client() -> redis.asyncio.Redis:
    return _from_url(redis.asyncio.Redis, decode_responses=True)


def _from_url(client_class: type, decode_responses: bool) -> Any:
    url = redis_url()
    try:
        return client_class.from_url(
            url, decode_responses=decode_responses, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS
        )
    except ValueError as error:
        sys.exit(f"Invalid REDIS_URL {url!r}: {error}")


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
