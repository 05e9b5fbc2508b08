"""Flask's test client for the app tests: an answer's status, exact body and JSON type."""

from werkzeug.test import TestResponse


def assert_json(response: TestResponse, status: int, body: bytes) -> None:
    """The answer is `status` with exactly `body`, sent as JSON (Express's `res.json`)."""
    assert (response.status_code, response.data) == (status, body)
    assert response.headers["Content-Type"] == "application/json"
