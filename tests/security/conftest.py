"""The security suite: the whole suite as processes (tests/e2e's `suite`), and the notifier's
fixtures (a RabbitMQ vhost of their own, the SMTP sink standing in for the relay, a publisher)."""

from tests.e2e.conftest import suite
from tests.notifier.conftest import publisher, smtp, vhost

__all__ = ["publisher", "smtp", "suite", "vhost"]
