"""Serving a service's app: the one place that knows how a Helpdesk process runs."""

from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from shared.logging import configure_logging
from shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def serve(service: str, settings: S, create_app: Callable[[S], web.Application]) -> None:
    """Log set-up, then the app on its host and port until SIGINT or SIGTERM, which end it
    gracefully (in-flight requests finish, cleanup contexts run). Our own middleware writes one
    log line per request, so aiohttp's access log is off."""
    configure_logging(service, settings.log_format)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        shutdown_timeout=10,
    )
