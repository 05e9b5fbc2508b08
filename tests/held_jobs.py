"""A job that a test in another process holds in hand (controlled_jobs.py's, for a
worker that is not the test's own process): it runs until the test's word comes
through Redis."""

from rq import get_current_job


def may_end_key(job_id: str) -> str:
    return f"test:may_end:{job_id}"


def waits_for_the_word(data: dict) -> str:
    """Runs until `let_end(job)`; fails after a minute without it."""
    job = get_current_job()
    if job.connection.blpop([may_end_key(job.id)], timeout=60) is None:
        raise TimeoutError("the test never let the job end")
    return job.id


def let_end(job) -> None:
    """The test's word: the job may end."""
    job.connection.rpush(may_end_key(job.id), "go")
