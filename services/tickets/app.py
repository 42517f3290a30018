"""tickets' app factory: resources through cleanup contexts, in order."""

from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from aiohttp import web

from services.tickets import attachments, auto_close, files
from services.tickets.api import ATTACHMENT_MAX_BYTES, PANEL_KEY, ROUTES
from services.tickets.consumers import (
    CONSUMER,
    OPERATORS_CONSUMER,
    OPERATORS_QUEUE,
    QUEUE,
    on_client_event,
    on_operator_event,
)
from services.tickets.idempotency import PURGE_INTERVAL, purge
from services.tickets.settings import TicketsSettings
from shared import resources
from shared.consumer import idempotent_consumer
from shared.http import create_base_app
from shared.openapi import add_routes

MIGRATIONS = Path(__file__).with_name("migrations")
log = structlog.get_logger(__name__)


def create_app(settings: TicketsSettings) -> web.Application:
    app = create_base_app("tickets")
    if settings.panel_key is not None:
        app[PANEL_KEY] = settings.panel_key.get_secret_value()
    app[ATTACHMENT_MAX_BYTES] = settings.attachment_max_bytes

    async def consumers(app: web.Application) -> AsyncIterator[None]:
        handler = idempotent_consumer(CONSUMER, app[resources.POOL], on_client_event)
        app[resources.BROKER].add_queue(QUEUE)
        app[resources.BROKER].add_consumer(QUEUE.name, handler, prefetch=settings.consumer_prefetch)
        operators = idempotent_consumer(OPERATORS_CONSUMER, app[resources.POOL], on_operator_event)
        app[resources.BROKER].add_queue(OPERATORS_QUEUE)
        app[resources.BROKER].add_consumer(
            OPERATORS_QUEUE.name, operators, prefetch=settings.consumer_prefetch
        )
        yield

    app.cleanup_ctx.extend(
        [
            resources.database(settings, "tickets", MIGRATIONS),
            resources.periodic("idempotency-key-purge", PURGE_INTERVAL, purge),
            resources.periodic("attachment-purge", attachments.PURGE_INTERVAL, files.purge),
            resources.token_verifier(settings.auth_url),
            resources.broker(settings, "tickets"),
            consumers,
            resources.start_broker,
            resources.outbox_relay(settings),
        ]
    )
    if settings.auto_close_days > 0:
        # Last, so that it stops first, and the first turn finds the outbox relay running.
        app.cleanup_ctx.append(
            resources.periodic(
                "ticket-auto-close",
                settings.auto_close_interval_seconds,
                auto_close.chore(settings.auto_close_days),
            )
        )
    add_routes(app, ROUTES, title="Helpdesk tickets", version="1")
    return app
