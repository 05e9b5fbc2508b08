"""Task 10 (8-job.js): create_push_notifications_jobs(jobs, queue).

Run as a script it does what the course's 8-job-main.js does: one job, then it waits for
the job's end. Nothing in the course works queue push_notification_code_3; a stock
`rq worker push_notification_code_3` started in this folder does.
"""

from rq import Queue

from queuing.job_queue import JobCreator
from queuing.redis_connection import create_client, run

QUEUE = "push_notification_code_3"
JOB_FUNCTION = "7_job_processor.notification_job"  # RQ names the function a job runs


def on_progress(job_id: str, percent: int) -> None:
    print(f"Notification job {job_id} {percent}% complete")


def on_completed(job_id: str) -> None:
    print(f"Notification job {job_id} completed")


def on_failed(job_id: str, error: str) -> None:
    print(f"Notification job {job_id} failed: {error}")


def create_push_notifications_jobs(jobs: list[dict[str, str]], queue: Queue) -> JobCreator:
    """Create a job on push_notification_code_3 (in the Redis of `queue`, as Kue's queue
    was the connection) for each job data. What becomes of them is printed as the returned
    creator delivers their events: call its `wait()`."""
    if not isinstance(jobs, list):
        raise TypeError("Jobs is not an array")
    notifications = Queue(QUEUE, connection=queue.connection, serializer=queue.serializer)
    creator = JobCreator(
        notifications, progress=on_progress, completed=on_completed, failed=on_failed
    )
    for job in creator.create_many(JOB_FUNCTION, jobs):
        print(f"Notification job created: {job.id}")
    return creator


def main() -> None:
    queue = Queue(QUEUE, connection=create_client(decode_responses=False))
    job_list = [
        {"phoneNumber": "4153518780", "message": "This is the code 1234 to verify your account"}
    ]
    create_push_notifications_jobs(job_list, queue).wait()


if __name__ == "__main__":
    run(main)
