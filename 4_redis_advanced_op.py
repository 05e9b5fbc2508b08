"""Task 4 (4-redis_advanced_op.js): store a hash field by field, then read it whole."""

from queuing.redis_connection import create_client, redis_print, run, wait_until_connected

client = create_client()

SCHOOLS = {
    "Portland": "50",
    "Seattle": "80",
    "New York": "20",
    "Bogota": "20",
    "Cali": "40",
    "Paris": "2",
}


def main() -> None:
    wait_until_connected(client)
    for city, value in SCHOOLS.items():
        # 1 when the field is new, 0 when it was already there (a second run).
        redis_print(client.hset("HolbertonSchools", city, value))
    print(client.hgetall("HolbertonSchools"))


if __name__ == "__main__":
    run(main)
