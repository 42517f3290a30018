"""The security suite runs on the whole suite as processes, as tests/e2e starts it."""

from tests.e2e.conftest import suite  # noqa: F401  (the fixture)
