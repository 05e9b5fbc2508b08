"""Task 2 (1-redis_op.js): set and get a value, printing replies as redis.print does."""

from queuing.redis_connection import create_client, redis_print, run, wait_until_connected

client = create_client()


def set_new_school(school_name: str, value: str) -> None:
    redis_print(client.set(school_name, value))


def display_school_value(school_name: str) -> None:
    print(client.get(school_name))


def main() -> None:
    wait_until_connected(client)
    display_school_value("Holberton")
    set_new_school("HolbertonSanFrancisco", "100")
    display_school_value("HolbertonSanFrancisco")


if __name__ == "__main__":
    run(main)
