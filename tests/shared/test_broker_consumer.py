"""shared.broker and shared.consumer against the real RabbitMQ: the declared topology, a
supervised connection that comes back (with its consumers) after being cut, and the idempotent
consumer's handling of duplicates, bad messages and transient failures."""

import asyncio
import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import asyncpg
import pytest

from shared.broker import DEAD_LETTER_EXCHANGE, DELIVERY_LIMIT, Broker, BrokerUnavailable
from shared.consumer import PoisonMessage, idempotent_consumer
from shared.events import ClientCreated, Envelope, TicketCreated
from tests.shared.conftest import OWNED_QUEUES
from tests.support.waiting import wait_for

QUEUE = "tickets.auth-client"
DEAD = "tickets.auth-client.dead"


def vhost_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def rabbitmqctl_json(*args: str) -> list[dict]:
    out = subprocess.run(
        ["rabbitmqctl", "-q", *args, "--formatter", "json"],
        check=True,
        capture_output=True,
        timeout=60,
        text=True,
    ).stdout
    return json.loads(out)


def envelope(number: str = "1001") -> Envelope:
    return Envelope.wrap(
        ClientCreated(
            client_number=number, name="N", email="n@example.com", language="es", services=[]
        )
    )


@pytest.fixture
async def start_broker() -> AsyncIterator[Callable[..., Awaitable[Broker]]]:
    brokers: list[Broker] = []

    async def start(url: str, consumers=(), *, wait: bool = True, queues=()) -> Broker:
        broker = Broker(url, service="broker-test", reconnect_interval=0.3)
        for spec in queues:
            broker.add_queue(spec)
        for queue, handler, prefetch in consumers:
            broker.add_consumer(queue, handler, prefetch=prefetch)
        await broker.start()
        brokers.append(broker)
        if wait:
            await broker.wait_ready(10)
        return broker

    yield start
    for broker in brokers:
        await broker.stop()


@pytest.fixture
async def purged(channel: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractChannel:
    """Other tests publish auth.client.* into the run's vhost: start from empty queues."""
    for name in (QUEUE, DEAD, "notifier.events"):
        await (await channel.get_queue(name)).purge()
    return channel


async def send(
    channel: aio_pika.abc.AbstractChannel,
    body: bytes,
    *,
    message_id: str | None = None,
    correlation_id: str | None = None,
    queue: str = QUEUE,
) -> None:
    message = aio_pika.Message(
        body,
        message_id=message_id,
        correlation_id=correlation_id,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    await channel.default_exchange.publish(message, routing_key=queue)


class DeadLetters:
    """What arrives in `<queue>.dead`, read with basic.get."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel) -> None:
        self.channel = channel
        self.messages: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def ids(self) -> set[str]:
        queue = await self.channel.get_queue(DEAD)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            self.messages.append(message)
        return {m.message_id for m in self.messages}


@pytest.fixture
async def scratch(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE effects (seq serial PRIMARY KEY, event_id uuid NOT NULL)")
    return pool


async def effects(pool: asyncpg.Pool, event_id: uuid.UUID) -> int:
    return await pool.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", event_id)


def counting(callback):
    """The consumer callback, counting deliveries it has finished with."""
    finished: list[str | None] = []

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await callback(message)
        finished.append(message.message_id)

    return on_message, finished


async def record_effect(conn: asyncpg.Connection, env: Envelope) -> None:
    await conn.execute("INSERT INTO effects (event_id) VALUES ($1)", env.id)


# --- Broker ---------------------------------------------------------------------------------


async def test_the_broker_declares_quorum_queues_with_a_dead_letter_queue_each(
    amqp_url, start_broker
):
    await start_broker(amqp_url, queues=OWNED_QUEUES)

    queues = {
        q["name"]: q
        for q in rabbitmqctl_json(
            "list_queues", "-p", vhost_of(amqp_url), "name", "type", "arguments"
        )
    }
    for spec in OWNED_QUEUES:
        queue = queues[spec.name]
        assert queue["type"] == "quorum"
        args = queue["arguments"]
        if isinstance(args, list):  # [[name, type, value], ...] from rabbitmqctl's json
            args = {a[0]: a[-1] for a in args}
        assert args["x-dead-letter-exchange"] == DEAD_LETTER_EXCHANGE
        assert args["x-dead-letter-routing-key"] == spec.name
        assert args["x-delivery-limit"] == DELIVERY_LIMIT
        assert queues[spec.dead_letter_queue]["type"] == "quorum"
    bindings = rabbitmqctl_json(
        "list_bindings", "-p", vhost_of(amqp_url), "source_name", "destination_name", "routing_key"
    )
    dead = {
        (b["destination_name"], b["routing_key"])
        for b in bindings
        if b["source_name"] == DEAD_LETTER_EXCHANGE
    }
    assert {(s.dead_letter_queue, s.name) for s in OWNED_QUEUES} <= dead


async def test_publish_without_a_connection_raises_broker_unavailable(
    amqp_url, broker_proxy, start_broker
):
    broker_proxy.cut()
    broker = await start_broker(broker_proxy.url_for(amqp_url), wait=False)

    with pytest.raises(BrokerUnavailable):
        await broker.publish("tickets.ticket.created", b"{}", str(uuid.uuid4()), None)
    assert not broker.is_ready


async def test_the_broker_connects_once_rabbitmq_becomes_reachable_after_start(
    amqp_url, broker_proxy, start_broker
):
    broker_proxy.cut()
    broker = await start_broker(broker_proxy.url_for(amqp_url), wait=False)
    await wait_for(lambda: not broker.is_ready, timeout=1)

    broker_proxy.restore()

    await broker.wait_ready(5)
    assert broker.connections_made == 1


async def _settled(amqp_url: str, queue: str) -> bool:
    """No message of `queue` is delivered and still unacknowledged, as RabbitMQ counts them."""
    listing = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", "list_queues", "-p", vhost_of(amqp_url), "--no-table-headers",
        "name", "messages_unacknowledged", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await listing.communicate()
    for line in out.decode().splitlines():
        name, _, count = line.partition("\t")
        if name == queue:
            return int(count) == 0
    return False


async def test_after_the_connection_is_cut_the_broker_reconnects_and_its_consumer_gets_messages(
    amqp_url, broker_proxy, purged, start_broker
):
    received: list[str] = []

    async def handler(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        received.append(message.message_id)
        await message.ack()

    broker = await start_broker(broker_proxy.url_for(amqp_url), [("notifier.events", handler, 8)])
    before = str(uuid.uuid4())
    await broker.publish("tickets.ticket.created", b"{}", before, None)
    await wait_for(lambda: before in received, message="delivery before the cut")
    # Its ack reached RabbitMQ (cut before that, the message is rightly delivered again).
    await wait_for(lambda: _settled(amqp_url, "notifier.events"), timeout=15, message="ack in")

    broker_proxy.cut()
    await wait_for(lambda: not broker.is_ready, message="connection lost")
    during = str(uuid.uuid4())  # published by someone else while we are away
    await send(purged, b"{}", message_id=during, queue="notifier.events")
    broker_proxy.restore()

    await broker.wait_ready(5)
    assert broker.connections_made == 2
    after = str(uuid.uuid4())
    await broker.publish("tickets.ticket.created", b"{}", after, None)
    await wait_for(lambda: {during, after} <= set(received), message="deliveries after")
    assert received.count(before) == 1


async def test_rabbitmq_closing_the_connection_is_survived_too(amqp_url, purged, start_broker):
    """The operator's way: rabbitmqctl close_all_connections on the vhost."""
    received: list[str] = []

    async def handler(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        received.append(message.message_id)
        await message.ack()

    broker = await start_broker(amqp_url, [("notifier.events", handler, 8)])
    closing = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", "close_all_connections", "-p", vhost_of(amqp_url), "test"
    )
    assert await closing.wait() == 0
    await wait_for(lambda: broker.connections_made == 2 and broker.is_ready, timeout=10)

    event = TicketCreated(
        number=1, client_number="1", subject="s", service={"id": 1, "name": "x"}, body="b"
    )
    env = Envelope.wrap(event)
    await broker.publish(env.type, env.model_dump_json().encode(), str(env.id), None)
    await wait_for(lambda: str(env.id) in received, message="delivery after reconnect")


# --- idempotent_consumer --------------------------------------------------------------------


async def test_the_same_event_delivered_twice_has_one_effect(
    amqp_url, purged, scratch, start_broker
):
    callback, finished = counting(idempotent_consumer("test", scratch, record_effect))
    await start_broker(amqp_url, [(QUEUE, callback, 4)])
    env = envelope()
    body = env.model_dump_json().encode()

    await send(purged, body, message_id=str(env.id))
    await send(purged, body, message_id=str(env.id))

    await wait_for(lambda: len(finished) == 2, message="both deliveries handled")
    assert await effects(scratch, env.id) == 1
    assert (
        await scratch.fetchval(
            "SELECT count(*) FROM processed_events WHERE consumer = 'test' AND event_id = $1",
            env.id,
        )
        == 1
    )


async def test_two_consumers_record_the_same_event_independently(
    amqp_url, purged, scratch, start_broker
):
    first, done_first = counting(idempotent_consumer("one", scratch, record_effect))
    await start_broker(amqp_url, [(QUEUE, first, 4)])
    env = envelope()
    await send(purged, env.model_dump_json().encode(), message_id=str(env.id))
    await wait_for(lambda: len(done_first) == 1)

    async with scratch.acquire() as conn, conn.transaction():
        from shared.consumer import record_once

        assert await record_once(conn, "two", env) is True
        assert await record_once(conn, "two", env) is False
        assert await record_once(conn, "one", env) is False


@pytest.mark.parametrize(
    "body",
    [b"not json {", b'{"some": "json"}', b'{"id": "nope", "type": "x"}'],
    ids=["garbage", "not-an-envelope", "bad-id"],
)
async def test_a_malformed_message_goes_to_the_dead_letter_queue(
    amqp_url, purged, scratch, start_broker, body
):
    callback, finished = counting(idempotent_consumer("test", scratch, record_effect))
    await start_broker(amqp_url, [(QUEUE, callback, 4)])
    dead = DeadLetters(purged)
    message_id = f"malformed-{uuid.uuid4()}"

    await send(purged, body, message_id=message_id)

    await wait_for(lambda: dead.ids(), message="a dead letter")
    assert await dead.ids() == {message_id}
    assert finished == [message_id]  # handled once: rejected, not retried
    assert await scratch.fetchval("SELECT count(*) FROM effects") == 0


async def test_a_poison_message_is_dead_lettered_without_its_effect(
    amqp_url, purged, scratch, start_broker
):
    async def handler(conn: asyncpg.Connection, env: Envelope) -> None:
        await record_effect(conn, env)
        raise PoisonMessage("a channel this consumer does not know")

    callback, finished = counting(idempotent_consumer("test", scratch, handler))
    await start_broker(amqp_url, [(QUEUE, callback, 4)])
    dead = DeadLetters(purged)
    env = envelope()

    await send(purged, env.model_dump_json().encode(), message_id=str(env.id))

    await wait_for(lambda: dead.ids(), message="a dead letter")
    assert await dead.ids() == {str(env.id)}
    assert len(finished) == 1
    assert await effects(scratch, env.id) == 0
    # Not recorded as processed either: a replay from the dead-letter queue would be handled.
    assert await scratch.fetchval("SELECT count(*) FROM processed_events") == 0


async def test_a_transient_failure_is_retried_until_the_handler_succeeds(
    amqp_url, purged, scratch, start_broker
):
    attempts: list[uuid.UUID] = []

    async def flaky(conn: asyncpg.Connection, env: Envelope) -> None:
        attempts.append(env.id)
        await record_effect(conn, env)
        if len(attempts) < 3:
            raise RuntimeError("a dependency hiccup")

    callback, finished = counting(idempotent_consumer("test", scratch, flaky))
    await start_broker(amqp_url, [(QUEUE, callback, 4)])
    dead = DeadLetters(purged)
    env = envelope()

    await send(purged, env.model_dump_json().encode(), message_id=str(env.id))

    await wait_for(lambda: len(finished) == 3, message="three deliveries")
    assert attempts == [env.id] * 3
    assert await effects(scratch, env.id) == 1  # the failed attempts left nothing behind
    assert await dead.ids() == set()


async def test_a_message_failing_every_time_is_dead_lettered_past_the_delivery_limit(
    amqp_url, purged, scratch, start_broker
):
    async def broken(conn: asyncpg.Connection, env: Envelope) -> None:
        raise RuntimeError("always")

    callback, finished = counting(idempotent_consumer("test", scratch, broken))
    await start_broker(amqp_url, [(QUEUE, callback, 4)])
    dead = DeadLetters(purged)
    env = envelope()

    await send(purged, env.model_dump_json().encode(), message_id=str(env.id))

    await wait_for(lambda: dead.ids(), timeout=15, message="a dead letter")
    assert await dead.ids() == {str(env.id)}
    assert len(finished) == DELIVERY_LIMIT + 1


async def test_stopping_while_the_broker_is_still_connecting_returns_promptly(amqp_url):
    """A service told to stop during (re)connection must stop: aio-pika swallows a cancellation
    that lands in a channel RPC, and a single cancel() then left stop() waiting forever."""

    async def consume(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await message.ack()

    for attempt in range(12):
        broker = Broker(amqp_url, service="stop-test", reconnect_interval=0.3)
        broker.add_consumer("notifier.events", consume)
        await broker.start()
        # Land the stop at a different point of the connection's set-up each time.
        await wait_for(lambda b=broker: b._connection is not None, timeout=5)
        for _ in range(attempt):
            await asyncio.sleep(0)  # not synchronisation: only moves the stop a step later
        async with asyncio.timeout(5):
            await broker.stop()
        assert not broker.is_ready


async def test_stop_returns_even_when_a_cancellation_is_swallowed_during_connecting(amqp_url):
    """What Python 3.11's wait_for (inside aio-pika) does when the awaited call finishes just as
    the cancel arrives: the CancelledError is lost and connecting carries on. stop() used to
    wait forever on the connected supervisor (seen as a hung test teardown of auth)."""
    entered = asyncio.Event()

    async def swallowing_declaration(channel: aio_pika.abc.AbstractChannel) -> None:
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):  # lost, as in the race
            await asyncio.Event().wait()

    broker = Broker(amqp_url, service="swallow-test", reconnect_interval=0.3)
    broker.add_topology(swallowing_declaration)
    await broker.start()
    async with asyncio.timeout(5):
        await entered.wait()

    started = time.monotonic()
    async with asyncio.timeout(5):
        await broker.stop()
    assert time.monotonic() - started < 2
    assert not broker.is_ready
