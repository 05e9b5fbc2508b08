"""All of a Redis database, comparable from run to run."""

import base64
import re
import zlib

import redis

TIME = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$|^\d{9,10}(\.\d+)?(e-?\d+)?$")


def snapshot(client: redis.Redis, worker_name: str) -> dict:
    """Every key with its type, expiry (set or not) and value, with what differs from
    run to run by nature (times, names, ids of executions and stream entries) masked."""
    state = {}
    for key in sorted(client.keys("*")):
        kind = client.type(key).decode()
        value = _value(client, key, kind)
        name = _mask(key, worker_name)
        state[name] = (kind, client.ttl(key) > 0, _mask_value(value, worker_name))
    return state


def _value(client: redis.Redis, key: bytes, kind: str):
    if kind == "hash":
        return sorted(client.hgetall(key).items())
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == "stream":
        return [
            sorted(map(_last_line_of_traceback, fields.items())) for _, fields in client.xrange(key)
        ]
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "set":
        return sorted(client.smembers(key))
    return client.get(key)


def _last_line_of_traceback(field: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    """A failure's traceback shows the worker's own frames: compare the error itself."""
    name, value = field
    if name == b"exc_string":
        value = zlib.decompress(base64.b64decode(value)).strip().splitlines()[-1]
    return name, value


def _mask(value: bytes, worker_name: str) -> bytes:
    value = value.replace(worker_name.encode(), b"<worker>")
    return re.sub(rb"[0-9a-f]{32}", b"<execution>", value)


def _mask_value(value, worker_name: str):
    if isinstance(value, bytes):
        return b"<time>" if TIME.match(value) else _mask(value, worker_name)
    if isinstance(value, float):
        return "<score>" if value not in (float("inf"), -1) else value
    if isinstance(value, list | tuple):
        return type(value)(_mask_value(item, worker_name) for item in value)
    return value
