"""Task 8 (7-job_creator.js): queue eleven notification jobs and report, as it happens,
the progress, completion or failure of each.

It ends once every job has ended; a processor (7_job_processor.py) runs them.
"""

from rq import Queue

from queuing.job_queue import JobCreator
from queuing.redis_connection import create_client, run

QUEUE = "push_notification_code_2"
JOB_FUNCTION = "7_job_processor.notification_job"  # RQ names the function a job runs

jobs = [
    {"phoneNumber": "4153518780", "message": "This is the code 1234 to verify your account"},
    {"phoneNumber": "4153518781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4153518743", "message": "This is the code 4321 to verify your account"},
    {"phoneNumber": "4153538781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4153118782", "message": "This is the code 4321 to verify your account"},
    {"phoneNumber": "4153718781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4159518782", "message": "This is the code 4321 to verify your account"},
    {"phoneNumber": "4158718781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4153818782", "message": "This is the code 4321 to verify your account"},
    {"phoneNumber": "4154318781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4151218782", "message": "This is the code 4321 to verify your account"},
]


def on_progress(job_id: str, percent: int) -> None:
    print(f"Notification job {job_id} {percent}% complete")


def on_completed(job_id: str) -> None:
    print(f"Notification job {job_id} completed")


def on_failed(job_id: str, error: str) -> None:
    print(f"Notification job {job_id} failed: {error}")


def main() -> None:
    queue = Queue(QUEUE, connection=create_client(decode_responses=False))
    creator = JobCreator(queue, progress=on_progress, completed=on_completed, failed=on_failed)
    # All at once, as the course's loop of queue.create(...).save() sends them.
    for job in creator.create_many(JOB_FUNCTION, jobs):
        print(f"Notification job created: {job.id}")
    creator.wait()


if __name__ == "__main__":
    run(main)
