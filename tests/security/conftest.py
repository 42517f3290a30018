"""The security suite's fixtures: the whole suite as processes (tests/e2e's, one per module,
shared by the checks made on it: test_running_suite.py) and, from the notifier's tests, a RabbitMQ
vhost of their own, the SMTP sink standing in for the relay, a publisher."""

from tests.e2e.conftest import suite, suite_env
from tests.notifier.conftest import publisher, smtp, vhost

__all__ = ["publisher", "smtp", "suite", "suite_env", "vhost"]
