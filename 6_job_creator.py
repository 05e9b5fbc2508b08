"""Task 6 (6-job_creator.js): queue one notification job and say what becomes of it.

It ends once a processor (6_job_processor.py) has run the job; until then it waits.
"""

from rq import Queue

from queuing.job_queue import JobCreator
from queuing.redis_connection import create_client, run

QUEUE = "push_notification_code"
JOB_FUNCTION = "6_job_processor.notification_job"  # RQ names the function a job runs

job_data = {
    "phoneNumber": "4153518780",
    "message": "This is the code to verify your account",
}


def main() -> None:
    queue = Queue(QUEUE, connection=create_client(decode_responses=False))
    creator = JobCreator(
        queue,
        completed=lambda job_id: print("Notification job completed"),
        failed=lambda job_id, error: print("Notification job failed"),
    )
    job = creator.create(JOB_FUNCTION, job_data)
    print(f"Notification job created: {job.id}")
    creator.wait()


if __name__ == "__main__":
    run(main)
