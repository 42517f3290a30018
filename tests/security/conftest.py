"""The security suite's fixtures from the notifier's tests: a RabbitMQ vhost of their own, the
SMTP sink standing in for the relay, a publisher. (The whole suite as processes, shared by the
checks made on it: test_running_suite.py.)"""

from tests.notifier.conftest import publisher, smtp, vhost

__all__ = ["publisher", "smtp", "vhost"]
