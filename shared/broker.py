"""RabbitMQ: the topology every service declares, a publisher with confirms, and consumers.

Why not aio-pika's robust connection: its reported failure modes (consumers not re-attached after
a broker restart, #231; a publish hanging on a dropped connection, #636; `connect_robust` failing
when the broker is down at start, #202) are exactly the cases we must survive. So a supervisor task
owns a plain connection: connect (retrying while the broker is away), declare the topology, open
the publishing channel and every consumer, wait until anything closes, then start again. Every
publish has a time limit. The result is one obvious loop instead of restored hidden state.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)

from shared.events import EXCHANGE
from shared.retry import Backoff

log = structlog.get_logger(__name__)

DEAD_LETTER_EXCHANGE = "helpdesk.dead"
UNROUTED_EXCHANGE = "helpdesk.unrouted"
UNROUTED_QUEUE = "helpdesk.unrouted"
DELIVERY_LIMIT = 10


@dataclass(frozen=True)
class QueueSpec:
    """A consumer's durable queue, declared by the service that consumes it (with the queue its
    dead letters go to), bound to the events exchange by the routing keys it wants."""

    name: str
    routing_keys: tuple[str, ...]

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dead"

    @property
    def arguments(self) -> dict[str, object]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": self.name,
            # at-least-once dead-lettering needs reject-publish overflow (RabbitMQ 3.10+).
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }


async def declare_topology(channel: AbstractChannel) -> AbstractExchange:
    """Idempotent declarations of the exchanges every service shares; returns the events
    exchange. Events that no queue is bound for (those nobody consumes, such as
    notifier.email.rejected) are kept in a bounded queue for audit."""
    unrouted = await channel.declare_exchange(
        UNROUTED_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
    )
    unrouted_queue = await channel.declare_queue(
        UNROUTED_QUEUE,
        durable=True,
        arguments={"x-queue-type": "quorum", "x-max-length": 100_000},
    )
    await unrouted_queue.bind(unrouted)
    await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    return await channel.declare_exchange(
        EXCHANGE,
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": UNROUTED_EXCHANGE},
    )


async def declare_queue(channel: AbstractChannel, spec: QueueSpec) -> AbstractQueue:
    """A consumer's queue and its dead-letter queue, bound (idempotent; after declare_topology)."""
    exchange = await channel.get_exchange(EXCHANGE, ensure=False)
    dead = await channel.get_exchange(DEAD_LETTER_EXCHANGE, ensure=False)
    queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
    for key in spec.routing_keys:
        await queue.bind(exchange, key)
    dlq = await channel.declare_queue(
        spec.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dlq.bind(dead, spec.name)
    return queue


class BrokerUnavailable(Exception):
    """The broker is not connected now; the caller keeps the work for later."""


MessageHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]


@dataclass
class _Consumer:
    queue: str
    handler: MessageHandler
    prefetch: int


class Broker:
    """One supervised AMQP connection: publishing with confirms, and the service's consumers."""

    def __init__(
        self,
        url: str,
        *,
        service: str,
        reconnect_interval: float = 2.0,
        publish_timeout: float = 5.0,
    ) -> None:
        self._url = url
        self._service = service
        self._reconnect_interval = reconnect_interval
        self._publish_timeout = publish_timeout
        self._consumers: list[_Consumer] = []
        self._queues: list[QueueSpec] = []
        self._extra_topology: list[Callable[[AbstractChannel], Awaitable[None]]] = []
        self._channel: AbstractChannel | None = None
        self._ready_listeners: list[Callable[[], None]] = []
        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing: asyncio.Task | None = None
        self.connections_made = 0

    def add_topology(self, declare: Callable[[AbstractChannel], Awaitable[None]]) -> None:
        """Extra declarations of this service (e.g. delay queues), made after the common
        topology and its queues on every connection."""
        self._extra_topology.append(declare)

    def add_queue(self, spec: QueueSpec) -> None:
        """A queue this service consumes, declared on every connection (register before
        `start`)."""
        self._queues.append(spec)

    def add_consumer(self, queue: str, handler: MessageHandler, *, prefetch: int = 32) -> None:
        """Register before `start`; the consumer is re-attached after every reconnection."""
        self._consumers.append(_Consumer(queue, handler, prefetch))

    def add_ready_listener(self, listener: Callable[[], None]) -> None:
        """Called after every (re)connection, e.g. to wake the outbox relay at once instead of
        leaving events waiting out its back-off once the broker is back."""
        self._ready_listeners.append(listener)

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self._ready.wait()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"{self._service}-broker")

    async def stop(self) -> None:
        task = self._task
        if task is not None:
            # Cancel again until the task has ended: a cancellation landing while the
            # connection is being set up can be swallowed (Python 3.11's wait_for, used by
            # aio-pika, loses one that races with the awaited call finishing), and a single
            # cancel() then left stop(), and the service's shutdown, waiting forever.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close()

    async def publish(
        self, routing_key: str, body: bytes, message_id: str, correlation_id: str | None
    ) -> None:
        """Publish one persistent event and wait for the broker's confirm (time-limited)."""
        message = aio_pika.Message(
            body,
            message_id=message_id,
            type=routing_key,
            content_type="application/json",
            correlation_id=correlation_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            app_id=self._service,
        )
        await self.send(message, routing_key)

    async def send(
        self, message: aio_pika.Message, routing_key: str, *, to_queue: bool = False
    ) -> None:
        """Publish with a confirm to the events exchange, or with `to_queue` straight to the
        queue named `routing_key` (the default exchange), e.g. a service's own delay queue."""
        channel, exchange = self._channel, self._exchange
        if channel is None or exchange is None or not self._ready.is_set():
            raise BrokerUnavailable("not connected to RabbitMQ")
        target = channel.default_exchange if to_queue else exchange
        try:
            await target.publish(
                message, routing_key, mandatory=True, timeout=self._publish_timeout
            )
        except Exception as exc:
            # A publish that failed or timed out leaves the connection suspect: start again.
            self._lost()
            raise BrokerUnavailable(f"publish failed: {exc!r}") from exc

    def _lost(self) -> None:
        # Closing the connection wakes the supervisor, which connects again.
        self._ready.clear()
        if self._connection is not None and not self._connection.is_closed:
            self._closing = asyncio.create_task(self._connection.close())

    async def _close(self) -> None:
        self._ready.clear()
        self._exchange = None
        self._channel = None
        conn, self._connection = self._connection, None
        if conn is not None and not conn.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)

    async def _supervise(self) -> None:
        backoff = Backoff(
            first=min(0.2, self._reconnect_interval), ceiling=self._reconnect_interval
        )
        pauses = backoff.pauses()
        while True:
            closed = asyncio.Event()
            try:
                await self._connect(closed)
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError  # a stop() whose cancel was swallowed
                pauses = backoff.pauses()
                log.info("broker.connected", consumers=[c.queue for c in self._consumers])
                await closed.wait()
                log.warning("broker.connection_lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("broker.connect_failed", error=repr(exc))
            await self._close()
            await asyncio.sleep(next(pauses))

    async def _connect(self, closed: asyncio.Event) -> None:
        def on_close(*_: object) -> None:
            self._ready.clear()
            closed.set()

        connection = await aio_pika.connect(
            self._url, timeout=5, client_properties={"connection_name": self._service}
        )
        self._connection = connection
        connection.close_callbacks.add(on_close)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        channel.close_callbacks.add(on_close)
        self._exchange = await declare_topology(channel)
        for spec in self._queues:
            await declare_queue(channel, spec)
        for declare in self._extra_topology:
            await declare(channel)
        self._channel = channel
        for consumer in self._consumers:
            consumer_channel = await connection.channel()
            consumer_channel.close_callbacks.add(on_close)
            await consumer_channel.set_qos(prefetch_count=consumer.prefetch)
            queue = await consumer_channel.get_queue(consumer.queue, ensure=True)
            await queue.consume(consumer.handler, no_ack=False)
        self.connections_made += 1
        self._ready.set()
        for listener in self._ready_listeners:
            listener()
