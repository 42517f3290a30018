"""What the scenarios put on the suite while a fault lasts: clients opening tickets that an
operator answers and closes, and bursts of events straight onto the exchange."""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from deploy.processes import Service
from shared import events
from tests.faults.stack import Client, Stack
from tests.notifier.conftest import Publisher
from tests.support.waiting import wait_for

# A request slower than this during an outage counts as hanging.
FAST_ANSWER = 5.0


@dataclass
class Outcome:
    what: str
    status: int  # 0: no answer (connection error or client-side timeout)
    seconds: float
    content_type: str = ""


@dataclass
class Load:
    """Workers (one per client) each repeating: open a ticket, the operator answers it, the
    operator closes it (retried until closed, so the next round can open another), a short pause.
    Records every request's outcome and what was accepted (each 201)."""

    stack: Stack
    label: str
    via: Service | None = None  # the tickets instance the load goes to; the stack's by default
    pause: float = 0.2
    max_rounds: int = 200
    tickets: list[int] = field(default_factory=list)
    replies: list[tuple[int, str]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task] = field(default_factory=list)

    def start(self, operator: dict[str, str]) -> "Load":
        self._tasks = [
            asyncio.create_task(self._worker(i, client, operator))
            for i, client in enumerate(self.stack.clients)
        ]
        return self

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self._tasks)

    async def finish_after_recovery(self, more: int = 3) -> None:
        """Let `more` tickets be opened after the fault (the suite works again), then stop."""
        after = len(self.tickets)
        await wait_for(
            lambda: len(self.tickets) >= after + more, timeout=30, message="load after the fault"
        )
        await self.finish()

    async def _call(
        self, session: aiohttp.ClientSession, what: str, method: str, path: str, **kw: Any
    ) -> tuple[int, Any]:
        began = time.monotonic()
        try:
            base = (self.via or self.stack.tickets).url
            async with session.request(method, base + path, **kw) as response:
                body = await response.json(content_type=None)
                outcome = Outcome(what, response.status, 0, response.content_type)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            body, outcome = None, Outcome(what, 0, 0)
        outcome.seconds = time.monotonic() - began
        self.outcomes.append(outcome)
        return outcome.status, body

    async def _worker(self, i: int, client: Client, operator: dict[str, str]) -> None:
        timeout = aiohttp.ClientTimeout(total=3 * FAST_ANSWER)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for round_ in range(self.max_rounds):
                if self.stop.is_set():
                    return
                await self._round(session, client, operator, f"{i}-{round_}")
                await asyncio.sleep(self.pause)  # pacing of the load, not synchronisation

    async def _round(
        self, session: aiohttp.ClientSession, client: Client, operator: dict[str, str], key: str
    ) -> None:
        new = {"service_id": client.service_id, "category_id": self.stack.category_id,
               "body": f"{self.label} ticket {key}"}  # fmt: skip
        status, body = await self._call(
            session, "open", "POST", "/v1/tickets", headers=client.headers, json=new
        )
        if status == 409 and isinstance(body, dict) and "open_ticket" in body:
            # Opened by an earlier request whose answer was lost: not accepted, but in the way.
            await self._close(session, body["open_ticket"], operator)
            return
        if status != 201:
            return
        number = body["number"]
        self.tickets.append(number)
        text = f"{self.label} reply {key}"
        status, _ = await self._call(
            session, "reply", "POST", f"/v1/tickets/{number}/messages", headers=operator,
            json={"body": text},
        )  # fmt: skip
        if status == 201:
            self.replies.append((number, text))
        await self._close(session, number, operator)

    async def _close(
        self, session: aiohttp.ClientSession, number: int, operator: dict[str, str]
    ) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status, _ = await self._call(
                session, "close", "POST", f"/v1/tickets/{number}/close", headers=operator
            )
            if status in (200, 409):
                return
            await asyncio.sleep(self.pause)
        raise AssertionError(f"ticket {number} could not be closed in 90 s")

    def statuses(self) -> Counter:
        return Counter(o.status for o in self.outcomes)

    def slowest(self) -> float:
        return max((o.seconds for o in self.outcomes), default=0.0)


async def publish_burst(stack: Stack, count: int, label: str) -> set[str]:
    """`count` password recovery events straight onto the events exchange; their Message-IDs."""
    publisher = await Publisher(stack.rabbit.url).start()
    try:
        sent = [
            await publisher.event(
                events.PasswordRecoveryRequested(
                    client_number=str(70000 + i),
                    email=f"{label}{i}@faults.example",
                    language="es",
                    reset_token=f"{label}-token-{i}",
                )
            )
            for i in range(count)
        ]
    finally:
        await publisher.close()
    return {f"<{e.id}@helpdesk.example>" for e in sent}
