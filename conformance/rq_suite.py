"""RQ's own worker tests, run against queuing.job_queue.JobWorker: the conformance run.

    .venv/bin/python conformance/rq_suite.py                  # stock, simple and all
    .venv/bin/python conformance/rq_suite.py --mode simple -k max_jobs --timeout 30
    .venv/bin/python conformance/rq_suite.py --slow --files test_worker,test_retry --jobs 1
    .venv/bin/python conformance/rq_suite.py --forked        # FORKED's tests and reasons

Gets the source distribution of the RQ that requirements.txt pins (pip download, cached in
.cache/rq-sdist/, its sha256 checked against SDIST_SHA256), starts redis-servers of its own
on 127.0.0.1 (one per parallel test process, on free ports), and runs the worker-related
test files of RQ's suite, each test in a pytest process of its own, bounded in time:

- `stock`: RQ as it is, the baseline (always run);
- `simple`: `rq.SimpleWorker` replaced by `queuing.job_queue.JobWorker`;
- `all`: `rq.Worker` replaced too, except in the tests of FORKED (they need a forked
  work horse, which a SimpleWorker has not: they keep `rq.Worker` there);
- `rq-simple` (on request only): `rq.Worker` replaced by RQ's own `SimpleWorker`, the check
  behind FORKED: a test that fails this way needs a fork, whatever the worker.

A few tests that fail now and then on stock RQ too (FLAKY, each with its reason in RQ's
code) run alone and up to three times. The replacing is done by the pytest plugin
conformance/rq_swap.py. Prints a summary line
per mode and the tests whose result differs from stock (passed there, not in the mode);
exits 0 only if every such test is in conformance/differences.py. Each test's output is in
.cache/rq-conformance/logs/<mode>/, all results in .cache/rq-conformance/results.json.
"""

import argparse
import ast
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import queue
import re
import runpy
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
sys.path.insert(0, str(PROJECT))  # the project's harness, run as a script from anywhere

from harness.redis_server import RedisServer, find_redis_server  # noqa: E402

CACHE = PROJECT / ".cache"
RESULTS = CACHE / "rq-conformance"

# The sha256 of RQ's sdist, by version: as the package index lists it for the file (pip
# gives it as download_info.archive_info.hashes.sha256 in `pip install --dry-run --report`),
# which `pip hash` of the downloaded file matched.
SDIST_SHA256 = {
    "3.0.0": "b41e39b3c36ec3faf9e2402c638a0b25fe18ebb93a1cb15193bc69694f054618",
}
# The files of RQ's tests/ that exercise a worker (all twelve are in 3.0.0's sdist).
TEST_FILES = (
    "test_worker",
    "test_callbacks",
    "test_dependencies",
    "test_executions",
    "test_job_lifecycle",
    "test_results",
    "test_retry",
    "test_scheduler",
    "test_timeouts",
    "test_commands",
    "test_worker_pool",
    "test_job_dependency",
)
# What those tests import beyond RQ's own dependencies (test_worker: psutil), installed
# into .cache/rq-test-deps when the environment lacks it. RQ's test deps leave it unpinned.
TEST_REQUIREMENTS = {"psutil": "psutil==7.2.2"}

MODES = {"stock": "none", "simple": "simple", "all": "all", "rq-simple": "rq-simple"}
DEFAULT_MODES = ("stock", "simple", "all")

# Tests that keep `rq.Worker` in mode `all`: they need a forked work horse, which a
# SimpleWorker (JobWorker is one) has not. Each fails with RQ's own SimpleWorker in place of
# Worker too (mode rq-simple); the reason is read in its code.
_HEARTBEAT = (
    "asserts Worker.get_heartbeat_ttl: a TTL bounded by job_monitoring_interval, as the "
    "forking Worker's monitoring loop renews it while the horse works; a SimpleWorker, "
    "which runs the job itself and cannot, gives one that covers the job's timeout"
)
_HORSE_DIES = (
    "its work horse ends abnormally after the job (perform_job raises in the horse); the "
    "Worker's monitor_work_horse sees the exit code and goes on, where in a SimpleWorker "
    "the exception is raised in the worker itself"
)
FORKED = {
    "tests/test_worker.py::TestWorker::test_get_heartbeat_ttl": _HEARTBEAT,
    "tests/test_worker.py::TestWorker::test_horse_fails": _HORSE_DIES,
    "tests/test_worker.py::TestWorker::"
    "test_monitor_work_horse_handles_performed_job_with_non_zero_exit_code_and_result_ttl_0": (
        _HORSE_DIES
    ),
    "tests/test_worker.py::WorkerShutdownTestCase::"
    "test_stopped_job_failed_even_if_stopped_callback_raises": (
        "calls Worker._handle_stopped_job, which only the forking Worker has: a job is "
        "stopped by killing its work horse"
    ),
    "tests/test_dependencies.py::TestDependencies::test_allow_failures_when_work_horse_killed": (
        "SIGKILLs the process running the job (its PID, stored by the job): the work horse "
        "for a Worker, the worker itself (here the test's process) for a SimpleWorker"
    ),
    "tests/test_executions.py::TestRegistry::test_heartbeat": _HEARTBEAT,
    "tests/test_executions.py::TestRegistry::test_registry_cleanup": _HEARTBEAT,
    # In test_commands.py: stopping a job is killing its horse.
    "tests/test_commands.py::TestCommands::test_kill_horse_command": (
        "sends kill-horse to a busy worker: a SimpleWorker has no horse to kill"
    ),
    "tests/test_commands.py::TestCommands::test_stop_execution_command": (
        "stop-execution kills the horse running the job: a SimpleWorker cannot stop it"
    ),
    "tests/test_commands.py::TestCommands::test_stop_job_command": (
        "stop-job kills the horse running the job: a SimpleWorker cannot stop it"
    ),
    # RQ's slow tests (--slow):
    "tests/test_worker.py::TestWorker::test_heartbeat_busy": (
        "counts the heartbeats the forking Worker's monitoring loop sends while its horse "
        "works; a SimpleWorker sends none during a job"
    ),
    "tests/test_worker.py::WorkerShutdownTestCase::test_work_horse_death_sets_job_failed": (
        "calls fork_work_horse and monitor_work_horse, and kills the horse"
    ),
    "tests/test_worker.py::WorkerShutdownTestCase::test_work_horse_force_death": (
        "calls fork_work_horse and monitor_work_horse (and is flaky on stock RQ in a "
        "container whose PID 1 does not reap: psutil sees the killed horse's child as a zombie)"
    ),
    "tests/test_worker.py::WorkerShutdownTestCase::test_working_worker_cold_shutdown": (
        "a second SIGTERM kills the horse and work() raises SystemExit; in RQ's SimpleWorker "
        "the SystemExit is raised inside the job, perform_job records a failure and work() "
        "returns"
    ),
}

# Tests that fail now and then on stock RQ too, for a reason in RQ's own code (read there,
# and given here): each runs alone (no other test beside it: load makes it worse) and up to
# FLAKY_ATTEMPTS times in each mode, the first pass counting; the report names the tests
# that needed more than one attempt. A test that never passes is still a failure.
FLAKY_ATTEMPTS = 3
FLAKY_TIMEOUT = 20  # seconds an attempt, at most (they pass in 2 or 3; failed, they hang)
_POOL_SHUTDOWN = (
    "sends the pool's first worker a shutdown command 0.5 s after starting the pool and "
    "expects the worker gone 0.75 s later. That worker (the one that won the scheduler "
    "lock) first waits for its scheduler process to sleep out its 1 s interval (some "
    "0.3 s here); then BaseWorker.unsubscribe unsubscribes before it stops its pubsub "
    "thread: a thread that sees the unsubscription first waits for a new subscription "
    "(redis-py's get_message) and RQ's join of it gives up after 1 s, too late. Failed, "
    "the test hangs: its pool's workers are never stopped"
)
FLAKY = {
    "tests/test_worker_pool.py::TestWorkerPool::test_check_workers": _POOL_SHUTDOWN,
    "tests/test_worker_pool.py::TestWorkerPool::test_reap_workers": _POOL_SHUTDOWN,
}


@dataclass
class Run:
    test: str
    mode: str
    outcome: str  # passed, failed, skipped, hang (timed out), killed (by a signal), error
    seconds: float
    log: str
    attempts: int = 1  # more only for a test of FLAKY


# ---------------------------------------------------------------- RQ's sdist and test deps


def pinned_rq_version() -> str:
    for line in (PROJECT / "requirements.txt").read_text().splitlines():
        if match := re.match(r"\s*rq==([\w.]+)", line):
            return match.group(1)
    raise SystemExit("rq_suite: requirements.txt pins no rq==<version>")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tests_path(sdist: Path) -> Path:
    """A folder holding only RQ's `tests` package (a link), first on the tests' PYTHONPATH:
    a process a test starts (`rqworker`) imports the jobs of tests/fixtures.py from
    `tests`, which would be the project's own tests/ from the project root."""
    folder = sdist.parent / f"{sdist.name}-path"
    link = folder / "tests"
    if not link.is_symlink():
        folder.mkdir(exist_ok=True)
        link.symlink_to(Path("..") / sdist.name / "tests", target_is_directory=True)
    return folder


def rq_sdist(version: str) -> Path:
    """RQ's source tree of `version`, downloaded, checked and extracted once."""
    expected = SDIST_SHA256.get(version)
    if expected is None:
        raise SystemExit(
            f"rq_suite: no sha256 pinned for rq {version}'s sdist: add it to SDIST_SHA256"
        )
    cache = CACHE / "rq-sdist"
    tree = cache / f"rq-{version}"
    marker = tree / ".sha256"
    if marker.exists() and marker.read_text().strip() == expected:
        return tree
    archive = cache / f"rq-{version}.tar.gz"
    if not archive.exists() or sha256_of(archive) != expected:
        archive.unlink(missing_ok=True)
        print(f"Downloading rq {version}'s source distribution into {cache}...", flush=True)
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
        pip += ["--no-deps", "--no-binary", ":all:", f"rq=={version}", "-d", str(cache)]
        subprocess.run(pip, check=True, stdin=subprocess.DEVNULL)
    actual = sha256_of(archive)
    if actual != expected:
        archive.rename(archive.with_suffix(".rejected"))
        raise SystemExit(f"rq_suite: {archive.name} has sha256 {actual}, not {expected}")
    shutil.rmtree(tree, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=cache) as temp, tarfile.open(archive) as tar:
        tar.extractall(temp, filter="data")
        (Path(temp) / f"rq-{version}").rename(tree)
    marker.write_text(expected + "\n")
    return tree


def test_dependency_paths() -> list[str]:
    """Folders to put on the tests' path for TEST_REQUIREMENTS the environment lacks."""
    missing = [req for name, req in TEST_REQUIREMENTS.items() if not importlib.util.find_spec(name)]
    if not missing:
        return []
    target = CACHE / "rq-test-deps"
    marker = target / ".installed"
    wanted = " ".join(sorted(missing))
    if not (marker.exists() and marker.read_text().strip() == wanted):
        print(f"Installing {wanted} (RQ's tests import it) into {target}...", flush=True)
        shutil.rmtree(target, ignore_errors=True)
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        pip += ["--no-deps", "--only-binary", ":all:", "--target", str(target), *missing]
        subprocess.run(pip, check=True, stdin=subprocess.DEVNULL)
        marker.write_text(wanted + "\n")
    return [str(target)]


def fixed_tmp_paths(sdist: Path, tests: list[str]) -> dict[str, list[str]]:
    """The tests that use a fixed path under /tmp (sentinel files, a sandbox folder made
    in setUp), with those paths: two of them at once would clash, and one killed
    midway leaves its path behind for the next. Read from the tests' source."""
    found: dict[str, list[str]] = {}
    for file in sorted({test.split("::")[0] for test in tests}):
        tree = ast.parse((sdist / file).read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                methods = [n for n in node.body if isinstance(n, ast.FunctionDef)]
                shared = [p for m in methods if not m.name.startswith("test") for p in _tmp(m)]
                for method in methods:
                    if paths := shared + _tmp(method):
                        found[f"{file}::{node.name}::{method.name}"] = paths
    return {test: found[test] for test in tests if test in found}


def _tmp(node: ast.AST) -> list[str]:
    return [
        n.value
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith("/tmp/")
    ]


# ---------------------------------------------------------------- redis-server


# ---------------------------------------------------------------- test processes


def session_members(session_id: int) -> list[int]:
    """The live processes of a session: a test's process and all it started (a work
    horse puts itself in a process group of its own, but stays in the session)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, _pgrp, session = stat.rsplit(")", 1)[1].split()[:4]
        if int(session) == session_id and state != "Z":
            members.append(int(entry))
    return members


def end_session(session_id: int) -> None:
    """SIGKILL, by PID, every process of a test's session (started by this script)."""
    for _ in range(20):
        members = session_members(session_id)
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


class Runner:
    def __init__(self, sdist: Path, servers: list[RedisServer], args: argparse.Namespace) -> None:
        self.sdist = sdist
        self.timeout = args.timeout
        self.servers: queue.Queue[RedisServer] = queue.Queue()
        for server in servers:
            self.servers.put(server)
        self.running: dict[int, subprocess.Popen] = {}
        self.tmp_paths: dict[str, list[str]] = {}  # set once the tests are collected
        self.tmp_lock = threading.Lock()  # one test with fixed /tmp paths at a time
        self.slots = Slots()  # the tests of FLAKY run with no other beside them
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        extra_paths = test_dependency_paths()
        self.env = dict(os.environ)
        # RQ's tests package; sitecustomize, which points RQ's tests at the run's server
        # (conformance/site/sitecustomize.py); job_queue and its modules; psutil.
        paths = [str(tests_path(sdist)), str(HERE / "site"), str(PROJECT), *extra_paths]
        self.env["PYTHONPATH"] = os.pathsep.join(paths)
        # The tests start `rqworker`: the one of this Python's environment.
        self.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env.pop("RUN_SLOW_TESTS_TOO", None)  # RQ's tests skip those unless --slow
        if args.slow:
            self.env["RUN_SLOW_TESTS_TOO"] = "1"

    def pytest_command(self, *arguments: str) -> list[str]:
        command = [sys.executable, "-m", "pytest", "-p", "conformance.rq_swap"]
        command += ["-p", "no:cacheprovider", "-c", str(self.sdist / "tox.ini")]
        command += ["--rootdir", str(self.sdist), "-W", "ignore::pytest.PytestUnknownMarkWarning"]
        return command + list(arguments)

    def collect(self, names: list[str], keyword: str | None) -> list[str]:
        """The test ids of the test files `names` (relative to the sdist:
        tests/test_x.py::Class::test)."""
        files = [self.sdist / "tests" / f"{name.removesuffix('.py')}.py" for name in names]
        missing = [path.name for path in files if not path.exists()]
        if missing:
            print(f"Not in this sdist, skipped: {', '.join(missing)}")
        arguments = ["--collect-only", "-q", *(["-k", keyword] if keyword else [])]
        arguments += [str(path) for path in files if path.exists()]
        server = self.servers.get()
        try:
            env = self.env | {"RQ_CONFORMANCE_REDIS_PORT": str(server.port)}
            done = subprocess.run(
                self.pytest_command(*arguments),
                cwd=PROJECT,
                env=env,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=300,
            )
        finally:
            self.servers.put(server)
        tests = [line for line in done.stdout.splitlines() if re.match(r"tests/\S+::", line)]
        if done.returncode not in (0, 5) or (not tests and not keyword):
            raise SystemExit(f"rq_suite: collecting RQ's tests failed:\n{done.stdout}{done.stderr}")
        self.tmp_paths = fixed_tmp_paths(self.sdist, tests)
        return tests

    def run(self, test: str, mode: str) -> Run:
        if test not in FLAKY:
            with self.slots.shared():
                return self._run_clear(test, mode)
        with self.slots.exclusive():
            for attempt in range(1, FLAKY_ATTEMPTS + 1):
                run = self._run_clear(test, mode, attempt)
                if run.outcome in ("passed", "skipped") or self.stopping.is_set():
                    break
            run.attempts = attempt
            return run

    def _run_clear(self, test: str, mode: str, attempt: int = 1) -> Run:
        paths = self.tmp_paths.get(test)
        if not paths:
            return self._run(test, mode, attempt)
        with self.tmp_lock:
            for path in paths:  # left behind by a test killed midway
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    if os.path.isdir(path):
                        shutil.rmtree(path)
                    else:
                        os.remove(path)
            return self._run(test, mode, attempt)

    def _run(self, test: str, mode: str, attempt: int = 1) -> Run:
        swap = MODES[mode]
        if mode == "all" and test in FORKED:
            swap = "simple"
        again = f"-attempt-{attempt}" if attempt > 1 else ""
        log = RESULTS / "logs" / mode / (re.sub(r"[^\w.-]+", "-", test) + again + ".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        server = self.servers.get()
        started = time.monotonic()
        try:
            if self.stopping.is_set():
                return Run(test, mode, "error", 0.0, str(log))
            with server.client() as client:
                client.flushall()
            with tempfile.NamedTemporaryFile("r", suffix=".result") as result, log.open("w") as out:
                env = self.env | {
                    "RQ_CONFORMANCE_REDIS_PORT": str(server.port),
                    "RQ_CONFORMANCE_SWAP": swap,
                    "RQ_CONFORMANCE_RESULT": result.name,
                }
                # pytest prints every thread's stack shortly before the process is killed.
                timeout = min(self.timeout, FLAKY_TIMEOUT) if test in FLAKY else self.timeout
                dump = max(timeout - 5, timeout * 0.8)
                arguments = ["-q", "--tb=long", "-rfEs", "-o", f"faulthandler_timeout={dump}"]
                command = self.pytest_command(*arguments, str(self.sdist / test))
                out.write(f"# {mode} (swap {swap}, redis port {server.port}): {test}\n")
                out.flush()
                outcome = self._run_process(command, env, out, result, timeout)
        finally:
            self.servers.put(server)
        return Run(test, mode, outcome, round(time.monotonic() - started, 2), str(log))

    def _run_process(self, command: list[str], env: dict, out, result, timeout: float) -> str:
        process = subprocess.Popen(
            command,
            cwd=PROJECT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own session: all it starts is found and ended
        )
        with self.lock:
            self.running[process.pid] = process
        if self.stopping.is_set():  # Ctrl-C came as it started
            end_session(process.pid)
        hung = False
        try:
            returncode = process.wait(timeout)
        except subprocess.TimeoutExpired:
            hung = True
            returncode = None
        finally:
            end_session(process.pid)
            process.wait()
            with self.lock:
                self.running.pop(process.pid, None)
        phases = [tuple(line.split()) for line in result.read().splitlines()]
        return outcome_of(phases, returncode, hung)

    def stop(self) -> None:
        """On Ctrl-C: end every test process still running, by its session."""
        self.stopping.set()
        with self.lock:
            running = list(self.running)
        for pid in running:
            end_session(pid)


class Slots:
    """The test processes' slots: shared by the tests that run side by side, held
    whole by a test that runs alone (FLAKY). A test waiting to run alone goes first:
    no test takes a slot meanwhile."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0  # tests waiting to run alone

    @contextlib.contextmanager
    def shared(self):
        with self._condition:
            self._condition.wait_for(lambda: not self._exclusive and not self._waiting)
            self._shared += 1
        try:
            yield
        finally:
            with self._condition:
                self._shared -= 1
                self._condition.notify_all()

    @contextlib.contextmanager
    def exclusive(self):
        with self._condition:
            self._waiting += 1
            self._condition.wait_for(lambda: not self._exclusive and not self._shared)
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()


def outcome_of(phases: list[tuple[str, ...]], returncode: int | None, hung: bool) -> str:
    if hung:
        return "hang"
    if returncode is not None and returncode < 0:
        return "killed"
    outcomes = [phase[1] for phase in phases if len(phase) == 2]
    if "failed" in outcomes:
        return "failed"
    if returncode == 0 and ("call", "passed") in phases:
        return "passed"
    if returncode == 0 and "skipped" in outcomes:
        return "skipped"
    return "error"


# ---------------------------------------------------------------- the run


def summary_line(mode: str, runs: list[Run]) -> str:
    count = {outcome: sum(run.outcome == outcome for run in runs) for outcome in OUTCOMES}
    failed = len(runs) - count["passed"] - count["skipped"]
    return f"{mode}: {count['passed']} passed, {failed} failed, {count['skipped']} skipped"


OUTCOMES = ("passed", "failed", "skipped", "hang", "killed", "error")


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mode",
        action="append",
        choices=[mode for mode in MODES if mode != "stock"] + ["stock"],
        help="simple, all or rq-simple (repeatable; stock, the baseline, always runs); "
        "default: simple and all",
    )
    parser.add_argument("-k", dest="keyword", help="pytest -k expression: run only those tests")
    parser.add_argument(
        "--slow",
        action="store_true",
        help="run RQ's slow tests too (RUN_SLOW_TESTS_TOO=1; 15 more in the default files)",
    )
    parser.add_argument(
        "--files",
        default=",".join(TEST_FILES),
        help="RQ's test files to run, comma-separated (default: the worker-related TEST_FILES)",
    )
    parser.add_argument("--timeout", type=float, default=60, help="seconds per test (60)")
    parser.add_argument("--jobs", type=int, default=2, help="test processes at a time (2)")
    parser.add_argument(
        "--forked",
        action="store_true",
        help="print the tests that keep rq.Worker in mode all, each with its reason, and exit",
    )
    args = parser.parse_args()
    if args.forked:
        for test, reason in FORKED.items():
            print(f"{test}\n    {reason}")
        return 0
    modes = ["stock"] + [
        mode for mode in dict.fromkeys(args.mode or DEFAULT_MODES) if mode != "stock"
    ]

    version = pinned_rq_version()
    installed = importlib.metadata.version("rq")
    if installed != version:
        raise SystemExit(
            f"rq_suite: this Python has rq {installed}, requirements.txt pins {version}"
        )
    binary = find_redis_server()
    if binary is None:
        raise SystemExit("rq_suite: no redis-server: run ./install_redis.sh --build-only")
    sdist = rq_sdist(version)
    allowed: dict[str, str] = runpy.run_path(str(HERE / "differences.py"))["DIFFERENCES"]

    servers: list[RedisServer] = []
    runner: Runner | None = None
    previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="rq-conformance-") as temp:
        try:
            for slot in range(max(1, args.jobs)):
                server = RedisServer(binary, Path(temp) / f"redis-{slot}", persist=False)
                try:
                    servers.append(server.start())
                except RuntimeError as error:
                    raise SystemExit(f"rq_suite: {error}") from None
            runner = Runner(sdist, servers, args)
            tests = runner.collect(args.files.split(","), args.keyword)
            pace = f"{args.jobs} at a time, {args.timeout:g} s each at most"
            print(f"RQ {version}'s tests: {len(tests)} ({args.files}), {pace}")
            results = run_modes(runner, tests, modes, args.jobs)
        except KeyboardInterrupt:
            print("\nrq_suite: interrupted", file=sys.stderr)
            return 130
        finally:
            if runner is not None:
                runner.stop()
            for server in servers:
                server.stop()
            signal.signal(signal.SIGTERM, previous_sigterm)
    return report(results, modes, tests, allowed, args)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_modes(runner: Runner, tests: list[str], modes: list[str], jobs: int) -> dict:
    results: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for mode in modes:
            print(f"{mode}: running...", flush=True)
            started = time.monotonic()
            futures = [pool.submit(runner.run, test, mode) for test in tests]
            runs = []
            try:
                for future in futures:
                    run = future.result()
                    runs.append(run)
                    if run.outcome not in ("passed", "skipped"):
                        log = os.path.relpath(run.log, PROJECT)
                        print(
                            f"  {run.outcome:7} {run.test} ({run.seconds:.1f} s, {log})", flush=True
                        )
            except BaseException:
                runner.stop()
                for future in futures:
                    future.cancel()
                raise
            results[mode] = {"seconds": round(time.monotonic() - started, 1), "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved = {mode: {**r, "runs": [asdict(run) for run in r["runs"]]} for mode, r in results.items()}
    (RESULTS / "results.json").write_text(json.dumps(saved, indent=1) + "\n")
    return results


def report(results: dict, modes: list[str], tests: list[str], allowed: dict, args) -> int:
    status = 0
    stock = {run.test: run.outcome for run in results["stock"]["runs"]}
    undocumented = total = 0
    print()
    for mode in modes:
        runs = results[mode]["runs"]
        print(summary_line(mode, runs))
        broken = [run for run in runs if run.outcome in ("hang", "killed", "error")]
        if broken:
            kinds = {kind: sum(run.outcome == kind for run in broken) for kind in OUTCOMES}
            print("  of the failed: " + ", ".join(f"{n} {k}" for k, n in kinds.items() if n))
        forked = sum(test in FORKED for test in tests)
        extra = f"; {forked} of them keep rq.Worker (FORKED)" if mode == "all" else ""
        print(f"  {len(runs)} tests in {minutes(results[mode]['seconds'])}{extra}")
        for run in runs:
            if run.attempts > 1:
                tries = f"attempt {run.attempts} of {FLAKY_ATTEMPTS}"
                print(f"  {run.outcome} at {tries} (FLAKY): {run.test}")
        if mode == "stock":
            failing = [run for run in runs if run.outcome not in ("passed", "skipped")]
            for run in failing:
                print(f"  fails on stock RQ ({run.outcome}): {run.test}")
            if failing:
                print("  (the baseline must pass: check this machine's setup)")
                status = 1
            continue
        differences = [run for run in runs if stock[run.test] == "passed" != run.outcome]
        if differences:
            print("  differs from stock:")
        total += len(differences)
        for run in differences:
            reason = allowed.get(run.test)
            if reason is None:
                undocumented += 1
            note = f"allowed: {reason}" if reason else "not in conformance/differences.py"
            print(f"    {run.outcome:7} {run.test}  ({note})")
    if not args.keyword:
        for test in sorted(set(allowed) - set(tests)):
            print(f"conformance/differences.py names a test that does not exist: {test}")
            status = 1
    if undocumented:
        status = 1
    print(
        f"conformance: {total} differences from stock RQ, "
        f"{undocumented} not in conformance/differences.py; exit status {status}"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
