"""Cleanup contexts that wire a service's resources, in order: pool, broker, outbox relay.

Each yields while the app runs and tears its resource down on the way out; a context that starts
a background task cancels and awaits it.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import structlog
from aiohttp import web
from prometheus_client import Gauge

from shared import db
from shared.auth import TOKEN_VERIFIER, JwksVerifier
from shared.broker import Broker
from shared.http import DEPENDENCIES, METRICS, Dependency
from shared.outbox import RELAY, OutboxRelay
from shared.settings import ServiceSettings
from shared.unit_of_work import wake_after_commit

log = structlog.get_logger(__name__)

POOL = web.AppKey("pool", asyncpg.Pool)
BROKER = web.AppKey("broker", Broker)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]
# Shutdown must end: a resource that does not stop in this time is abandoned (logged), since a
# process that never exits is worse for its supervisor than one that exits a little untidily.
STOP_TIMEOUT = 10.0
# How often sent outbox rows older than a day are deleted.
OUTBOX_PURGE_INTERVAL = 600.0


async def bounded(stopping: Awaitable[None], what: str) -> None:
    try:
        await asyncio.wait_for(stopping, STOP_TIMEOUT)
    except TimeoutError:
        log.warning("shutdown.timed_out", resource=what)


async def close_pool(pool: asyncpg.Pool) -> None:
    """Close gracefully; connections still held after the time limit are terminated."""
    try:
        await asyncio.wait_for(pool.close(), STOP_TIMEOUT)
    except TimeoutError:
        log.warning("shutdown.timed_out", resource="database pool")
        pool.terminate()


def database(settings: ServiceSettings, service: str, migrations: Path) -> CleanupContext:
    async def context(app: web.Application) -> AsyncIterator[None]:
        await db.migrate(settings.database_url, service, migrations)
        pool = await db.create_pool(
            settings.database_url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            command_timeout=settings.db_command_timeout,
        )
        app[POOL] = pool

        async def reachable() -> bool:
            return await db.ping(pool)

        app[DEPENDENCIES].append(Dependency("database", reachable))
        yield
        await close_pool(pool)

    return context


def broker(settings: ServiceSettings, service: str) -> CleanupContext:
    """Register consumers on `app[BROKER]` in a later context's start, before it connects."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        instance = Broker(
            settings.amqp_url, service=service, reconnect_interval=settings.amqp_reconnect_interval
        )
        app[BROKER] = instance

        async def connected() -> bool:
            return instance.is_ready

        # Reported, never a reason to be unready: the outbox keeps the events meanwhile.
        app[DEPENDENCIES].append(Dependency("broker", connected, required=False))
        if METRICS in app:
            Gauge(
                "broker_connected",
                "1 while the connection to RabbitMQ is up",
                registry=app[METRICS].registry,
            ).set_function(lambda: float(instance.is_ready))
        yield
        await bounded(instance.stop(), "broker")

    return context


def start_broker(app: web.Application) -> AsyncIterator[None]:
    """Connects once every consumer is registered (a separate, later context)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        await app[BROKER].start()
        yield

    return context(app)


def outbox_relay(settings: ServiceSettings) -> CleanupContext:
    async def context(app: web.Application) -> AsyncIterator[None]:
        relay = OutboxRelay(
            settings.database_url,
            app[BROKER].publish,
            poll_interval=settings.outbox_poll_interval,
            notify_pool=app[POOL],
        )
        app[RELAY] = relay
        app[BROKER].add_ready_listener(relay.wake)
        wake_after_commit(app[POOL], relay.committed)
        await relay.start()

        async def purge(app: web.Application) -> None:
            purged = await relay.purge_sent(app[POOL])
            if purged:
                log.info("outbox.purged", count=purged)

        purging = periodic("outbox-purge", OUTBOX_PURGE_INTERVAL, purge)(app)
        await anext(purging)
        yield
        with contextlib.suppress(StopAsyncIteration):
            await anext(purging)
        wake_after_commit(app[POOL], None)
        await bounded(relay.stop(), "outbox relay")

    return context


def token_verifier(auth_url: str) -> CleanupContext:
    """Tokens verified with auth's public keys (JWKS), fetched now so that they verify even if
    auth goes down before the first request; auth being down at start is no reason not to
    start (the keys are then fetched on first use)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        verifier = JwksVerifier(auth_url)
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
            await verifier.refresh()
        app[TOKEN_VERIFIER] = verifier
        yield
        await verifier.close()

    return context


def periodic(
    name: str, interval: float, chore: Callable[[web.Application], Awaitable[object]]
) -> CleanupContext:
    """`chore(app)` once the resources before it are up, then every `interval` seconds until
    the app stops (housekeeping such as purging expired rows). A failure (say, the database
    away) is logged and the chore tried again at the next turn."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async def turns() -> None:
            while True:
                try:
                    await chore(app)
                except Exception as exc:  # a chore's failure must not end its turns
                    log.warning("chore.failed", chore=name, error=repr(exc))
                await asyncio.sleep(interval)

        task = asyncio.create_task(turns(), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
