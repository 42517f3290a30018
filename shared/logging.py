"""structlog set-up, and the correlation id that follows one piece of work across services.

The correlation id lives in a context variable: the HTTP middleware sets it from `X-Request-ID`
(or a new one), the outbox stores it with each event, and consumers set it again from the AMQP
`correlation_id` property, so one line of grep follows a request through every service.
"""

import logging
import sys
import uuid
from contextvars import ContextVar
from typing import TextIO

import structlog

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def current_correlation_id() -> str | None:
    return correlation_id.get()


def bind_correlation_id(value: str | None) -> str:
    """Set the correlation id for the current task (a new one when none is given)."""
    value = value or new_correlation_id()
    correlation_id.set(value)
    structlog.contextvars.bind_contextvars(correlation_id=value)
    return value


def configure_logging(
    service: str,
    fmt: str | None = None,
    level: int = logging.INFO,
    *,
    stream: TextIO | None = None,
) -> None:
    """JSON lines in production, readable lines on a terminal; `fmt` is `json` or `console`.
    A service logs to standard output, where container runtimes collect it (`stream` defaults to
    the current sys.stdout); a command-line tool passes sys.stderr, keeping its output apart."""
    out = stream or sys.stdout
    if fmt is None:
        fmt = "console" if out.isatty() else "json"
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    # Library loggers (aiohttp, aio-pika) go to the same stream, but quietly.
    logging.basicConfig(level=logging.WARNING, stream=out, format="%(name)s %(message)s")


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
