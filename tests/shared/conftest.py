"""Fixtures of the shared package's tests: a database with the shared tables, a direct AMQP
channel on the run's vhost, a cuttable TCP proxy to RabbitMQ, and auth (the real service)."""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aio_pika
import asyncpg
import pytest
import structlog
from aiohttp.test_utils import TestClient

from services.notifier.delivery import EVENTS as NOTIFIER_QUEUE
from services.tickets.consumers import QUEUE as TICKETS_QUEUE
from shared import db
from shared.broker import Broker, MessageHandler, declare_queue, declare_topology
from shared.logging import correlation_id
from tests.auth.conftest import admin, api, auth, auth_db, make_auth  # noqa: F401
from tests.support.infra import DatabaseFactory
from tests.support.proxy import TcpProxy


@pytest.fixture
async def shared_db(databases: DatabaseFactory) -> str:
    """A fresh database holding only the shared tables (outbox, processed_events)."""
    return await databases.migrated("shared", db.SHARED_MIGRATIONS)


@pytest.fixture
async def pool(shared_db: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(shared_db, min_size=1, max_size=5)
    yield pool
    await pool.close()


# The consumer queues of the services, as tickets and the notifier declare them.
OWNED_QUEUES = (TICKETS_QUEUE, NOTIFIER_QUEUE)


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    """A channel straight to RabbitMQ (no proxy), with the exchanges and the services' consumer
    queues declared."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await declare_topology(channel)
    for spec in OWNED_QUEUES:
        await declare_queue(channel, spec)
    yield channel
    await connection.close()


@pytest.fixture
async def broker_proxy() -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy("127.0.0.1", 5672).start()
    yield proxy
    await proxy.close()


@pytest.fixture
def make_proxied_auth(
    broker_proxy: TcpProxy,  # first: it must outlive the auth instances
    make_auth: Callable[..., Awaitable[TestClient]],  # noqa: F811 (the fixture imported above)
    amqp_url: str,
) -> Callable[[], Awaitable[TestClient]]:
    """auth instances whose only way to RabbitMQ is through `broker_proxy` (same vhost)."""
    return lambda: make_auth(amqp_url=broker_proxy.url_for(amqp_url))


@pytest.fixture(autouse=True)
def _forget_correlation_id() -> Iterator[None]:
    """A test binding a correlation id must not lend it to the next test's events."""
    yield
    correlation_id.set(None)
    structlog.contextvars.unbind_contextvars("correlation_id")


@pytest.fixture
async def start_consumer(amqp_url: str) -> AsyncIterator[Callable[..., Awaitable[Broker]]]:
    """A Broker on the run's vhost consuming one queue with the given callback."""
    brokers: list[Broker] = []

    async def start(queue: str, callback: MessageHandler, prefetch: int = 4) -> Broker:
        broker = Broker(amqp_url, service="consumer-test", reconnect_interval=0.3)
        broker.add_consumer(queue, callback, prefetch=prefetch)
        await broker.start()
        brokers.append(broker)
        await broker.wait_ready(10)
        return broker

    yield start
    for broker in brokers:
        await broker.stop()
