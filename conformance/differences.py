"""The deliberate differences between JobWorker and RQ's workers in RQ's own test suite:
test id (as rq_suite.py prints it) -> why the test cannot pass with JobWorker.

rq_suite.py fails on any other test that passes with stock RQ and not with JobWorker.
Empty for now: the known differences are bugs to fix (issue 10, see FINDINGS.md).
"""

DIFFERENCES: dict[str, str] = {}
