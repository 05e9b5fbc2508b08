"""Task 5 (5-subscriber.js): print each message on the channel; KILL_SERVER ends it."""

from queuing.redis_connection import create_client, run, wait_until_connected

CHANNEL = "holberton school channel"

client = create_client()


def main() -> None:
    wait_until_connected(client)
    subscriber = client.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(CHANNEL)
    for message in subscriber.listen():
        print(message["data"])
        if message["data"] == "KILL_SERVER":
            subscriber.unsubscribe(CHANNEL)
            subscriber.close()
            return


if __name__ == "__main__":
    run(main)
