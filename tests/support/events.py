"""A test's own queue on the events exchange, to see what the services really published."""

import asyncio
import contextlib
import json
from typing import Any

import aio_pika

from shared.broker import declare_topology
from tests.support.waiting import wait_for


class EventTap:
    """Binds an exclusive queue to `helpdesk.events` with `#` and records every message."""

    def __init__(self, amqp_url: str) -> None:
        self.url = amqp_url
        self.messages: list[aio_pika.abc.AbstractIncomingMessage] = []
        self._connection: aio_pika.abc.AbstractConnection | None = None

    async def start(self) -> "EventTap":
        self._connection = await aio_pika.connect(self.url)
        channel = await self._connection.channel()
        exchange = await declare_topology(channel)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, "#")

        async def record(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            self.messages.append(message)
            await message.ack()

        await queue.consume(record)
        return self

    async def close(self) -> None:
        if self._connection is not None:
            # A close that never completes must not hang the test run.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connection.close(), 10)

    def bodies(self, routing_key: str | None = None) -> list[dict[str, Any]]:
        return [
            json.loads(m.body)
            for m in self.messages
            if routing_key is None or m.routing_key == routing_key
        ]

    async def wait(self, routing_key: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        await wait_for(
            lambda: len(self.bodies(routing_key)) >= count,
            timeout=timeout,
            message=f"{count} {routing_key} event(s)",
        )
        return self.bodies(routing_key)
