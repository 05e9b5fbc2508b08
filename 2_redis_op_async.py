"""Task 3 (2-redis_op_async.js): task 2 with async/await, on redis-py's asyncio client.

JavaScript needed `promisify` to await a callback API; redis.asyncio is awaitable as is.
"""

from queuing.redis_connection import (
    create_async_client,
    redis_print,
    run,
    wait_until_connected_async,
)

client = create_async_client()


async def set_new_school(school_name: str, value: str) -> None:
    redis_print(await client.set(school_name, value))


async def display_school_value(school_name: str) -> None:
    print(await client.get(school_name))


async def main() -> None:
    await wait_until_connected_async(client)
    await display_school_value("Holberton")
    await set_new_school("HolbertonSanFrancisco", "100")
    await display_school_value("HolbertonSanFrancisco")
    await client.aclose()


if __name__ == "__main__":
    run(main)
