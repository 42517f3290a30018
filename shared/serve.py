"""Serving a service's app: the one place that knows how a Helpdesk process runs."""

import gc
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
    log line per request, so aiohttp's access log is off. The loop is uvloop's, which does in C
    the event loop's own work (callbacks, socket reads and writes), a large share of a service's
    CPU under load."""
    configure_logging(service, settings.log_format)
    app = create_app(settings)
    app.on_startup.append(_freeze_startup_objects)  # after the app's own start-up steps
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        shutdown_timeout=10,
        loop=uvloop.new_event_loop(),
    )


async def _freeze_startup_objects(_: web.Application) -> None:
    """Move everything made while starting (modules, models, templates, pools: tens of thousands
    of objects) out of the garbage collector's sight. A full collection scanned them all each
    time, pausing every request in flight; they live as long as the process anyway."""
    gc.collect()
    gc.freeze()
