"""Examples beside the course's scripts, run from the project's folder:
`python examples/<name>.py`. A package, so that RQ finds a job's function here by its
import path (`examples.kue_options_processor.notification_job`), as it finds the course's
(`7_job_processor.notification_job`), in any worker started in the project's folder."""
