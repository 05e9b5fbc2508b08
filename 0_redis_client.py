"""Task 1 (0-redis_client.js): connect to Redis and say whether it worked.

With no server it prints the error line on each retry, about once a second, until the
server answers or Ctrl-C.
"""

from queuing.redis_connection import create_client, run, wait_until_connected

client = create_client()


def main() -> None:
    wait_until_connected(client)


if __name__ == "__main__":
    run(main)
