"""A steady load of HTTP requests for the failover test and the bench: a few clients,
each sending one request after another with a pause (not a throughput test)."""

import http.client
import threading
import time

REQUEST_TIMEOUT = 10


class PacedClients:
    """`clients` threads each sending GET `path` one after another, `pause` seconds apart,
    until stopped; every answer kept as (sent, answered, status, body), status None for
    a request that got no HTTP answer."""

    def __init__(self, port: int, path: str, clients: int, pause: float) -> None:
        self._answers: list[tuple[float, float, int | None, bytes]] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(port, path, pause), daemon=True)
            for _ in range(clients)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, port: int, path: str, pause: float) -> None:
        while not self._stopped.wait(pause):
            sent = time.monotonic()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                status, body = response.status, response.read()
            except (OSError, http.client.HTTPException) as error:
                status, body = None, repr(error).encode()
            finally:
                connection.close()
            with self._lock:
                self._answers.append((sent, time.monotonic(), status, body))

    def answers(self) -> list[tuple[float, float, int | None, bytes]]:
        """Every answer so far: (sent, answered, status, body)."""
        with self._lock:
            return list(self._answers)

    def answered_since(self, moment: float) -> list[tuple[int | None, bytes]]:
        """(status, body) of the requests sent after `moment` and answered."""
        return [(status, body) for sent, _, status, body in self.answers() if sent > moment]

    def stop(self) -> None:
        self._stopped.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 5)
