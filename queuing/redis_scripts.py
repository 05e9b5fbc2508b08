"""Lua scripts with named KEYS and ARGV, each run in one round trip.

A script names its keys and arguments once; it reads them into locals of those names
(the lines put before its body), and callers pass them by name: nothing depends on
the order of a list written in two places.

    TAKE = LuaScript(keys=("stock",), argv=("initial",), body="...uses stock, initial...")
    TAKE.run(client, keys={"stock": "item.1"}, args={"initial": 4})

Arguments past the named ones (`rest`) start at ARGV[REST_AT].

A script in a file of its own names them in its opening comment lines, once:

    -- KEYS: stock
    -- ARGV: initial
    -- INCLUDE: other.lua      (that file's Lua, put here: a function scripts share)

    TAKE = LuaScript.from_file(Path(__file__).parent / "lua" / "take_one.lua")
"""

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hiredis
import redis
from redis.connection import Connection

from queuing.redis_connection import NotConfirmed, Undo, confirm_on

__all__ = ["LuaScript", "NotConfirmed"]


class LuaScript:
    def __init__(self, keys: Sequence[str], argv: Sequence[str], body: str) -> None:
        self.keys = tuple(keys)
        self.argv = tuple(argv)
        self._key_set, self._argv_set = frozenset(keys), frozenset(argv)
        header = f"local REST_AT = {len(self.argv) + 1}\n"
        if self.keys:
            header += f"local {', '.join(self.keys)} = unpack(KEYS, 1, {len(self.keys)})\n"
        if self.argv:
            header += f"local {', '.join(self.argv)} = unpack(ARGV, 1, {len(self.argv)})\n"
        self.source = header + body
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()  # what EVALSHA names

    @classmethod
    def from_file(cls, path: Path | str) -> "LuaScript":
        """The script in the .lua file at `path`, its KEYS and ARGV named in its opening
        comment lines (`-- KEYS: a, b`, `-- ARGV: c`; a long list goes on in another
        such line), read once."""
        path = Path(path)
        names: dict[str, list[str]] = {"KEYS": [], "ARGV": []}
        for line in path.read_text().splitlines():
            if not line.startswith("--"):
                break  # the header is the opening comment lines
            header = _HEADER.match(line)
            if header is not None:
                if not _NAMES.match(header["names"]):
                    raise ValueError(f"{path.name}: names, comma-separated, in {line!r}")
                names[header["kind"]] += re.findall(r"\w+", header["names"])
        return cls(names["KEYS"], names["ARGV"], _with_includes(path))

    def run(
        self,
        client: redis.Redis,
        keys: dict,
        args: dict,
        rest: Sequence = (),
        confirm: bool = False,
        undo: Undo | None = None,
    ) -> Any:
        """Run it on a connection of the client's pool. With `confirm`, for a write that
        is confirmed to a user: once the replicas the client needs have it (WAIT, on the
        same connection, which is what WAIT counts); if they do not in time, `undo` takes
        it back on that connection (redis_connection.confirm_on) and NotConfirmed
        carries the script's reply."""
        pool = client.connection_pool
        connection = pool.get_connection()
        try:
            reply = self.run_on(connection, keys, args, rest)
            return confirm_on(connection, client, reply, undo) if confirm else reply
        finally:
            pool.release(connection)

    def run_on(
        self,
        connection: Connection,
        keys: dict[str, Any],
        args: dict[str, Any],
        rest: Sequence = (),
    ) -> Any:
        """EVALSHA on this connection, loading the script first where Redis does not have
        it (a new or restarted server), without redis-py's per-command wrappers
        (retries, events: a fifth of queueing a job). A connection cut off is dropped:
        a reply may be on its way, and the next command reconnects."""
        reply = self.run_many_on(connection, [self.command(keys, args, rest)])[0]
        if isinstance(reply, redis.ResponseError):
            raise reply
        return reply

    def command(self, keys: dict[str, Any], args: dict[str, Any], rest: Sequence = ()) -> tuple:
        """The EVALSHA command that runs it with these keys and arguments."""
        key_values = _in_order(self.keys, self._key_set, keys)
        command = ("EVALSHA", self.sha, len(key_values), *key_values)
        return (*command, *_in_order(self.argv, self._argv_set, args), *rest)

    def run_many_on(self, connection: Connection, commands: Sequence[tuple]) -> list[Any]:
        """The commands (each from `command`) sent at once on this connection and their
        replies read in order (Redis answers in order): one round trip for them all. A
        reply that is an error is returned as its exception, for the caller to raise or
        not: each reply is read either way, or the next command would read a stale one."""
        try:
            connection.send_packed_command(_packed_all(commands))
            replies = [_read_reply(connection) for _ in commands]
            unknown = [n for n, reply in enumerate(replies) if _no_script(reply)]
            if unknown:  # a new or restarted server: load it, send those again
                connection.send_command("SCRIPT", "LOAD", self.source)
                connection.read_response()
                connection.send_packed_command(_packed_all([commands[n] for n in unknown]))
                for n in unknown:
                    replies[n] = _read_reply(connection)
            return replies
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()
            raise


def _read_reply(connection: Connection) -> Any:
    try:
        return connection.read_response()
    except redis.ResponseError as error:
        return error


def _no_script(reply: Any) -> bool:
    return isinstance(reply, redis.exceptions.NoScriptError)


_HEADER = re.compile(r"--\s*(?P<kind>KEYS|ARGV):(?P<names>.*)$")
_NAMES = re.compile(r"^\s*[A-Za-z_]\w*(\s*,\s*[A-Za-z_]\w*)*\s*$")
_INCLUDE = re.compile(r"^--\s*INCLUDE:\s*(?P<name>\S+)\s*$", re.MULTILINE)


def _with_includes(path: Path) -> str:
    """The file's Lua, each `-- INCLUDE: name.lua` line replaced by that file's Lua (a
    path beside this one), once: shared pieces are written in one place."""
    return _INCLUDE.sub(lambda line: _with_includes(path.parent / line["name"]), path.read_text())


def _packed_all(commands: Sequence[tuple]) -> list[bytes]:
    """The commands in Redis's protocol: the very bytes redis-py sends with hiredis
    installed (requirements.txt pins it), without the pass its wrapper makes over every
    argument first (to turn a bytearray into bytes): ~7 µs of a step's ~50 arguments."""
    try:
        return [hiredis.pack_command(command) for command in commands]
    except TypeError as error:  # an argument not str, bytes, int or float: redis-py's error
        raise redis.DataError(error) from None


def _in_order(names: Sequence[str], name_set: frozenset[str], values: dict[str, Any]) -> list[Any]:
    """The values, in the order of the names: all of them, and only them."""
    if values.keys() != name_set:
        raise ValueError(f"arguments {sorted(set(values) ^ name_set)} missing or unknown")
    return [values[name] for name in names]
