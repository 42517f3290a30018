"""Serving a service's app: the one place that knows how a Helpdesk process runs."""

from collections.abc import Callable
from typing import TypeVar

import uvloop
from aiohttp import web

from shared.logging import configure_logging
from shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def serve(service: str, settings: S, create_app: Callable[[S], web.Application]) -> None:
    """Log set-up, then the app on its host and port until SIGINT or SIGTERM, which end it
    gracefully (in-flight requests finish, cleanup contexts run). Our own middleware writes one
    log line per request, so aiohttp's access log is off. The loop is uvloop's: about 40 % of a
    service's CPU went into the event loop's socket writes and callbacks (py-spy under
    `make bench`), which uvloop does in C."""
    configure_logging(service, settings.log_format)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        shutdown_timeout=10,
        loop=uvloop.new_event_loop(),
    )
