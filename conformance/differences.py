"""The deliberate differences between JobWorker and RQ's workers in RQ's own test suite:
test id (as rq_suite.py prints it) -> why the test cannot pass with JobWorker.

rq_suite.py fails on any other test that passes with stock RQ and not with JobWorker.

None is left. What a worker that runs its jobs itself (a SimpleWorker, as JobWorker is)
cannot do, a forked work horse's tests, is not a difference of JobWorker's: those tests
keep RQ's forking Worker in mode `all` (rq_suite.FORKED, each with its reason, checked
by mode `rq-simple`: they fail with RQ's own SimpleWorker too), and JobWorker replaces
SimpleWorker in them (`rq_suite.py --forked` prints them). Every other difference the
run found was a bug, and is fixed, but for a few that no test of RQ's sees (a shorter
heartbeat TTL, kept alive by a thread; the project's own workers start anew on a lost
Redis...): docs/jobs.md lists them with their reasons.

An entry belongs here only for such a reason: a test that fails because of something
JobWorker chose to do otherwise than RQ, and cannot do as RQ without losing what it is
for; with the reason, here and in docs/jobs.md.
"""

DIFFERENCES: dict[str, str] = {}
