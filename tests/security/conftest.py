"""The security tests reuse the notifier's fixtures: a RabbitMQ vhost of their own, the SMTP
sink standing in for the relay, and a publisher of events."""

from tests.notifier.conftest import publisher, smtp, vhost

__all__ = ["publisher", "smtp", "vhost"]
