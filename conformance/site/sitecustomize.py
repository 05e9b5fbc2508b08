"""Run by every Python process of the conformance run (rq_suite.py puts this folder on
PYTHONPATH): the tests' pytest processes and whatever they start (`rqworker`, spawned work
horses, multiprocessing children).

RQ's tests connect to a Redis at redis-py's default address, localhost:6379: `Redis()` and
`Redis(db=n)` in tests/__init__.py and tests/fixtures.py, and one URL written out
(TestWorkerSubprocess: `rqworker -u redis://127.0.0.1:6379/<db>`). Here each connection
redis-py opens to localhost:6379 goes to 127.0.0.1:<RQ_CONFORMANCE_REDIS_PORT> instead, the
run's own server; what the tests see of their connection's settings stays as RQ wrote them.
"""

import functools
import inspect
import os

PORT = os.environ.get("RQ_CONFORMANCE_REDIS_PORT")

if PORT:
    import redis.connection

    _init = redis.connection.Connection.__init__
    _signature = inspect.signature(_init)

    @functools.wraps(_init)
    def _init_on_our_server(*args, **kwargs):
        bound = _signature.bind(*args, **kwargs)
        bound.apply_defaults()
        if (
            bound.arguments["host"] in ("localhost", "127.0.0.1")
            and int(bound.arguments["port"]) == 6379
        ):
            bound.arguments["host"] = "127.0.0.1"
            bound.arguments["port"] = int(PORT)
        _init(*bound.args, **bound.kwargs)

    redis.connection.Connection.__init__ = _init_on_our_server
    redis.connection.CONFORMANCE_REDIS_PORT = int(PORT)  # rq_swap checks it is in place
