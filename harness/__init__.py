"""What the tests, the bench and the conformance run share: real servers and ports."""
