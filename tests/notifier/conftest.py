"""A notifier on a fresh database and a RabbitMQ vhost of its own (so no other test's events
reach its queues), with an in-process SMTP relay, and a publisher of events into the vhost."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import pytest
from aiohttp.test_utils import TestClient

from services.notifier.app import INBOUND, create_app
from services.notifier.app import MIGRATIONS as NOTIFIER_MIGRATIONS
from services.notifier.settings import NotifierSettings
from shared.broker import declare_topology
from shared.events import Envelope, EventData
from shared.resources import BROKER, POOL
from tests.support import stack
from tests.support.events import EventTap
from tests.support.infra import DatabaseFactory, Vhosts
from tests.support.sealing import PRIVATE_KEY, sealed
from tests.support.smtp import SmtpSink

PUBLIC_URL = "https://panel.helpdesk.test"
SENDER = "Soporte <soporte@helpdesk.example>"
FAST_RETRIES = [0.2, 0.4, 0.8]


class Publisher:
    """Publishes envelopes into the events exchange as a producer's outbox relay would."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def start(self) -> "Publisher":
        self._connection = await aio_pika.connect(self.url)
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await declare_topology(channel)
        return self

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def envelope(self, envelope: Envelope, correlation_id: str | None = None) -> Envelope:
        assert self._exchange is not None
        message = aio_pika.Message(
            envelope.model_dump_json().encode(),
            message_id=str(envelope.id),
            type=envelope.type,
            content_type="application/json",
            correlation_id=correlation_id or uuid.uuid4().hex,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._exchange.publish(message, envelope.type, mandatory=True)
        return envelope

    async def event(self, data: EventData, correlation_id: str | None = None) -> Envelope:
        """`data` published as auth would: its link token sealed for the notifiers."""
        for token_field in ("reset_token", "set_password_token", "confirm_token"):
            token = getattr(data, token_field, None)
            if token is not None:
                data = data.model_copy(update={token_field: sealed(token)})
        return await self.envelope(Envelope.wrap(data), correlation_id)


class Notifier:
    def __init__(self, client: TestClient, settings: NotifierSettings) -> None:
        self.client = client
        self.settings = settings
        self.app = client.server.app

    @property
    def pool(self) -> Any:
        return self.app[POOL]

    @property
    def inbound_port(self) -> int:
        return self.app[INBOUND].port

    async def email_row(self, event_id: uuid.UUID) -> Any:
        return await self.pool.fetchrow("SELECT * FROM emails WHERE event_id = $1", event_id)

    async def dead_letters(self) -> list[Any]:
        return await self.pool.fetch("SELECT * FROM dead_letters ORDER BY id")


@pytest.fixture
async def vhost(vhosts: Vhosts) -> AsyncIterator[str]:
    name, url = await vhosts.take()
    yield url
    vhosts.give_back(name)  # deleted in the background


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSink]:
    sink = await SmtpSink().start()
    yield sink
    await sink.stop()


@pytest.fixture
async def publisher(vhost: str) -> AsyncIterator[Publisher]:
    pub = await Publisher(vhost).start()
    yield pub
    await pub.close()


@pytest.fixture
async def tap(vhost: str) -> AsyncIterator[EventTap]:
    t = await EventTap(vhost).start()
    yield t
    await t.close()


@pytest.fixture
async def notifier_db(databases: DatabaseFactory) -> str:
    return await databases.migrated("notifier", NOTIFIER_MIGRATIONS)


def notifier_settings(
    database_url: str, amqp_url: str, smtp_port: int, **overrides: Any
) -> NotifierSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "amqp_url": amqp_url,
        "public_url": PUBLIC_URL,
        "smtp_port": smtp_port,
        "inbound_port": 0,
        "sender": SENDER,
        "retry_delays": FAST_RETRIES,
        "auth_url": "http://127.0.0.1:9",  # no auth unless a test gives one
        "sealing_key": PRIVATE_KEY,
    }
    return NotifierSettings(**(stack.FAST | values | overrides))


StartNotifier = Callable[..., Awaitable[Notifier]]


@pytest.fixture
async def start_notifier(
    notifier_db: str, vhost: str, smtp: SmtpSink, publisher: Publisher
) -> AsyncIterator[StartNotifier]:
    started: list[TestClient] = []

    async def start(**overrides: Any) -> Notifier:
        settings = notifier_settings(notifier_db, vhost, smtp.port, **overrides)
        client = await stack.start(create_app(settings))
        started.append(client)
        await client.server.app[BROKER].wait_ready(15)
        return Notifier(client, settings)

    yield start
    for client in started:
        await client.close()


@pytest.fixture
async def notifier(start_notifier: StartNotifier) -> Notifier:
    return await start_notifier()


@pytest.fixture
async def auth(databases: DatabaseFactory, vhost: str) -> AsyncIterator[TestClient]:
    """An auth whose tokens the notifier of `admin_notifier` accepts."""
    client = await stack.start_auth(databases, vhost)
    yield client
    await client.close()


@pytest.fixture
async def admin_notifier(start_notifier: StartNotifier, auth: TestClient) -> Notifier:
    return await start_notifier(auth_url=str(auth.make_url("/")))
