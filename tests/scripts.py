"""Run the project's scripts as a user does, with REDIS_URL pointing at a test server."""

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def script_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "REDIS_URL": redis_url, **extra}
    env.pop("PYTHONUNBUFFERED", None)  # the scripts must flush their lines themselves
    return env


def run_script(
    name: str, redis_url: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess:
    """Run a script to its end; its output as text."""
    return subprocess.run(
        [sys.executable, name],
        cwd=PROJECT,
        env=script_env(redis_url, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Script:
    """A script running in the background, whose output lines a test waits for.

    It runs in a session of its own, so that `interrupt()` reaches it and every process
    it started, as Ctrl-C in its terminal does.
    """

    def __init__(
        self, name: str, redis_url: str, command: list[str] | None = None, **env: str
    ) -> None:
        self.name = name
        self.process = subprocess.Popen(
            command or [sys.executable, name],
            cwd=PROJECT,
            env=script_env(redis_url, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []  # every line read so far
        self._unread: queue.Queue[str | None] = queue.Queue()
        self.error_lines: list[str] = []  # its stderr, line by line as written
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            self._unread.put(line.rstrip("\n"))
        self._unread.put(None)

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.error_lines.append(line)

    def next_line(self, timeout: float = 20) -> str:
        try:
            line = self._unread.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name}: no new line in {timeout} s") from None
        if line is None:
            self._unread.put(None)  # stays at the end for later readers
            raise AssertionError(f"{self.name} ended: {self.stderr()}")
        self.lines.append(line)
        return line

    def lines_so_far(self) -> list[str]:
        """The lines written since the last read, without waiting for more."""
        read = []
        while True:
            try:
                line = self._unread.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._unread.put(None)
                break
            read.append(line)
        self.lines += read
        return read

    def read_lines(self, count: int, timeout: float = 20) -> list[str]:
        return [self.next_line(timeout) for _ in range(count)]

    def read_until_line(self, expected: str, timeout: float = 20) -> list[str]:
        """Read until the line `expected`; the lines read on the way, it included."""
        read = [self.next_line(timeout)]
        while read[-1] != expected:
            read.append(self.next_line(timeout))
        return read

    def interrupt(self) -> None:
        """What Ctrl-C in its terminal does: SIGINT to it and to the processes it started."""
        os.killpg(self.process.pid, signal.SIGINT)

    def terminate(self) -> None:
        """What `kill <pid>` does: SIGTERM to the script's own process."""
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30) -> int:
        """Wait for the end; the lines not read yet are then in `rest`."""
        code = self.process.wait(timeout=timeout)
        self.rest: list[str] = []
        while (line := self._unread.get(timeout=5)) is not None:
            self.rest.append(line)
        self._unread.put(None)
        self.lines += self.rest
        return code

    def stderr(self) -> str:
        """What it wrote to stderr, once it has ended."""
        if self.process.poll() is None:
            return "(still running)"
        self._stderr_reader.join(timeout=5)
        return "".join(self.error_lines)

    def assert_no_traceback(self) -> None:
        """Fail if it printed a traceback; its whole stderr is printed first, for pytest
        to show in full (an assertion's message would be cut)."""
        stderr = self.stderr()
        if "Traceback" in stderr:
            print(f"{self.name}'s stderr:\n{stderr}")
        assert "Traceback" not in stderr, f"{self.name} printed a traceback (stdout shows it)"

    def close(self) -> None:
        """Kill it and whatever it started, if still there."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
