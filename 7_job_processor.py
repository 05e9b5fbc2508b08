"""Task 9 (7-job_processor.js): work queue push_notification_code_2 two jobs at a time,
reporting progress and failing the jobs of blacklisted numbers.

Runs until Ctrl-C or SIGTERM, finishing the jobs in hand first.
"""

from queuing.job_queue import report_progress, work
from queuing.redis_connection import create_client, run

QUEUE = "push_notification_code_2"
JOBS_AT_A_TIME = 2

blacklisted_numbers = ["4153518780", "4153518781"]


def send_notification(phone_number: str, message: str) -> None:
    report_progress(0, 100)
    if phone_number in blacklisted_numbers:
        # Kue's done(new Error(...)): a job fails by raising; the creator gets the message.
        raise ValueError(f"Phone number {phone_number} is blacklisted")
    report_progress(50, 100)
    print(f"Sending notification to {phone_number}, with message: {message}")


def notification_job(data: dict[str, str]) -> None:
    """What each job of the queue runs: its data is the course's {phoneNumber, message}."""
    send_notification(data["phoneNumber"], data["message"])


def main() -> None:
    work([QUEUE], create_client(decode_responses=False), workers=JOBS_AT_A_TIME)


if __name__ == "__main__":
    run(main)
