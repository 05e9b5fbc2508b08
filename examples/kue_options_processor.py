"""The processor of examples/kue_options.py: work queue kue_options two jobs at a time,
as 7_job_processor.py works its queue, the jobs' priorities, delays and retries included.

Run from the project's folder: `python examples/kue_options_processor.py`. It runs until
Ctrl-C or SIGTERM, finishing the jobs in hand first.
"""

import sys
from pathlib import Path

# Run as `python examples/kue_options_processor.py`, Python puts examples/ first on the
# path, not the project's folder, where `queuing` and this package (`examples`) are.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queuing.job_queue import log_line, report_progress, work
from queuing.redis_connection import create_client, run

QUEUE = "kue_options"
JOBS_AT_A_TIME = 2

blacklisted_numbers = ["4153518780"]


def notification_job(data: dict[str, str]) -> dict:
    """What each job of the queue runs: it fails for a blacklisted number (the creator
    gave that job attempts, so it is tried again); else it reports its progress with
    data, sends, keeps a log line and returns a result, which the creator hears."""
    phone_number, message = data["phoneNumber"], data["message"]
    if phone_number in blacklisted_numbers:
        raise ValueError(f"Phone number {phone_number} is blacklisted")
    report_progress(50, 100, {"stage": "sending"})
    print(f"Sending notification to {phone_number}, with message: {message}")
    log_line("Notification sent to %s", phone_number)
    return {"phoneNumber": phone_number, "delivered": True}


def main() -> None:
    # The workers work the queue's priority levels too (critical first), and queue the
    # delayed jobs and the retries when they are due: nothing else need run.
    work([QUEUE], create_client(decode_responses=False), workers=JOBS_AT_A_TIME)


if __name__ == "__main__":
    run(main)
