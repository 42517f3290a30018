"""The notifier's app factory: resources through cleanup contexts, in order."""

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from services.notifier import store
from services.notifier.api import DELIVERY, ROUTES, SEALING_KEY
from services.notifier.composer import Composer
from services.notifier.delivery import (
    DEAD_QUEUE,
    EVENTS,
    EVENTS_QUEUE,
    Delivery,
    Metrics,
    delay_topology,
)
from services.notifier.headers import read_headers
from services.notifier.inbound import InboundHandler
from services.notifier.listener import InboundServer
from services.notifier.mailer import Mailer
from services.notifier.settings import NotifierSettings
from services.notifier.worker_pool import WorkerPool
from shared import resources, sealing
from shared.db import stored_secret
from shared.http import DEPENDENCIES, METRICS, Dependency, create_base_app
from shared.openapi import add_routes

MIGRATIONS = Path(__file__).with_name("migrations")
# Records of inbound mail are kept 30 days (SPEC 9.1), or the automatic answers' window when
# longer; the purge runs at start and then this often.
INBOUND_KEPT_DAYS = 30.0
PURGE_INTERVAL = 3_600.0
INBOUND = web.AppKey("inbound", InboundServer)


def create_app(settings: NotifierSettings) -> web.Application:
    app = create_base_app("notifier")
    composer = Composer(sender=settings.sender, public_url=settings.public_url)
    metrics = Metrics(app[METRICS].registry)

    async def sealing_key(app: web.Application) -> AsyncIterator[None]:
        configured = settings.sealing_key
        app[SEALING_KEY] = (
            configured.get_secret_value()
            if configured is not None
            else await stored_secret(
                app[resources.POOL],
                "notifier_secrets",
                "sealing_key",
                sealing.generate_private_key(),
            )
        )
        yield

    async def consumers(app: web.Application) -> AsyncIterator[None]:
        broker = app[resources.BROKER]
        delivery = Delivery(
            pool=app[resources.POOL],
            broker=broker,
            settings=settings,
            composer=composer,
            # As many idle connections kept as emails may be sent at once (the prefetch): with
            # fewer, every burst closed and reopened connections (EHLO, QUIT, a name lookup).
            mailer=(mailer := Mailer(settings, keep_idle=settings.consumer_prefetch)),
            metrics=metrics,
            sealing_key=app[SEALING_KEY],
        )
        app[DELIVERY] = delivery
        broker.add_topology(delay_topology(settings.retry_delays))
        broker.add_queue(EVENTS)
        broker.add_consumer(EVENTS_QUEUE, delivery.on_event, prefetch=settings.consumer_prefetch)
        broker.add_consumer(DEAD_QUEUE, delivery.on_dead, prefetch=8)
        yield
        await mailer.close()

    async def inbound(app: web.Application) -> AsyncIterator[None]:
        readers = WorkerPool(
            read_headers,
            workers=settings.inbound_parse_workers,
            time_limit=settings.inbound_parse_timeout,
        )
        await readers.start()
        try:
            server = InboundServer(InboundHandler(app[resources.POOL], settings, readers), settings)
            await server.start()
            app[INBOUND] = server

            async def listening() -> bool:
                return server.is_serving()

            app[DEPENDENCIES].append(Dependency("inbound_smtp", listening))
            yield
            await server.stop()
        finally:
            await readers.close()

    async def purge_inbound_records(app: web.Application) -> None:
        kept_days = max(INBOUND_KEPT_DAYS, settings.auto_reply_window_days)
        async with app[resources.POOL].acquire(timeout=5) as conn:
            await store.purge_inbound(conn, kept_days * 86_400)

    app.cleanup_ctx.extend(
        [
            resources.database(settings, "notifier", MIGRATIONS),
            resources.token_verifier(settings.auth_url),
            sealing_key,
            resources.broker(settings, "notifier"),
            consumers,
            resources.start_broker,
            resources.outbox_relay(settings),
            inbound,
            resources.periodic("inbound-purge", PURGE_INTERVAL, purge_inbound_records),
        ]
    )
    add_routes(app, ROUTES, title="Helpdesk notifier", version="1")
    return app
