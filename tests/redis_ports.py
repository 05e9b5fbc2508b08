"""Redis servers on this machine's loopback, by port: for the tests of the servers
install_redis.sh starts, which the tests know only by their ports."""

import redis


def client(port: int) -> redis.Redis:
    return redis.Redis(port=port, decode_responses=True)


def answers(port: int) -> bool:
    try:
        with client(port) as redis_client:
            return redis_client.ping()
    except redis.ConnectionError:
        return False
