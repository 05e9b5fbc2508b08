"""Task 5 (5-publisher.js): publish four messages, 100 ms apart, on the channel.

Each `publish_message` waits on its own, as setTimeout does in the course; the script
ends once the last one is sent.
"""

import asyncio

from queuing.redis_connection import create_async_client, run, wait_until_connected_async

CHANNEL = "holberton school channel"

client = create_async_client()


async def publish_message(message: str, time: int) -> None:
    await asyncio.sleep(time / 1000)
    print(f"About to send {message}")
    await client.publish(CHANNEL, message)


async def main() -> None:
    await wait_until_connected_async(client)
    await asyncio.gather(
        publish_message("Holberton Student #1 starts course", 100),
        publish_message("Holberton Student #2 starts course", 200),
        publish_message("KILL_SERVER", 300),
        publish_message("Holberton Student #3 starts course", 400),
    )
    await client.aclose()


if __name__ == "__main__":
    run(main)
