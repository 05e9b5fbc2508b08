"""Task 7 (6-job_processor.js): work the jobs of queue push_notification_code.

Runs until Ctrl-C or SIGTERM, finishing the job in hand first.
"""

from queuing.job_queue import work
from queuing.redis_connection import create_client, run

QUEUE = "push_notification_code"


def send_notification(phone_number: str, message: str) -> None:
    print(f"Sending notification to {phone_number}, with message: {message}")


def notification_job(data: dict[str, str]) -> None:
    """What each job of the queue runs: its data is the course's {phoneNumber, message}."""
    send_notification(data["phoneNumber"], data["message"])


def main() -> None:
    work([QUEUE], create_client(decode_responses=False))


if __name__ == "__main__":
    run(main)
