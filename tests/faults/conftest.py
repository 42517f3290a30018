"""The fault suite: auth, tickets and the notifier as real processes (as tests/e2e runs them) on a
PostgreSQL cluster and a RabbitMQ node of their own (tests/faults/private.py), with the in-process
SMTP relay of tests/support/smtp.py, which a scenario can stop or make answer 4xx.

Collected only with HELPDESK_FAULTS=1 (`make faults`; see tests/conftest.py). Each scenario
records what it injected and what it checked with `report()`; the lines are printed at the end of
the run (pytest's terminal summary), so CI shows them without `-s`.
"""

import asyncio
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy.processes import CHEAP_ARGON2, Service, clean_env, run_module
from shared import events
from tests.faults.private import PrivatePostgres, PrivateRabbit
from tests.notifier.conftest import Publisher
from tests.support.sealing import SEALING_ENV
from tests.support.smtp import Received, SmtpSink
from tests.support.waiting import wait_for

ADMIN = ("admin@faults.example", "the fault suite admin passphrase")
OPERATOR = ("olga@faults.example", "the fault suite operator passphrase")
CLIENT_PASSWORD = "the fault suite client passphrase"
CLIENTS = 3
# Retries that outlast the relay's 60 s outage (about 95 s in all) yet come back within 10 s.
RETRY_DELAYS = "[1, 2, 4, 8, 10, 10, 10, 10, 10, 10, 10, 10]"
# A request slower than this during an outage counts as hanging.
FAST_ANSWER = 5.0

REPORT: list[str] = []


def report(line: str) -> None:
    print(line)
    REPORT.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.write_sep("=", "fault suite: what was injected and checked")
        for line in REPORT:
            terminalreporter.write_line(line)


@dataclass
class Client:
    number: str
    email: str
    service_id: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stack:
    pg: PrivatePostgres
    rabbit: PrivateRabbit
    relay: SmtpSink
    auth: Service
    tickets: Service
    notifier: Service
    notifier_database_url: str
    category_id: int = 0
    clients: list[Client] = field(default_factory=list)

    @property
    def services(self) -> list[Service]:
        return [self.auth, self.tickets, self.notifier]

    async def token(self, username: str, password: str) -> dict[str, str]:
        status, body = await self.auth.request(
            "POST", "/v1/token", json={"username": username, "password": password}
        )
        assert status == 200, body
        return {"Authorization": f"Bearer {body['access_token']}"}

    async def admin(self) -> dict[str, str]:
        return await self.token(*ADMIN)

    async def operator(self) -> dict[str, str]:
        return await self.token(*OPERATOR)

    async def refresh_tokens(self) -> None:
        for client in self.clients:
            client.headers = await self.token(client.number, CLIENT_PASSWORD)

    async def all_ready(self, timeout: float = 60) -> None:
        for service in self.services:
            await service.wait_ready(timeout)

    async def unready(self) -> dict[str, int]:
        """Each service's /readyz status, expected 503 while a dependency is away."""
        return {s.name: (await s.request("GET", "/readyz"))[0] for s in self.services}

    async def dead_letters(self) -> list[dict[str, Any]]:
        status, body = await self.notifier.request(
            "GET", "/v1/dead-letters", headers=await self.admin()
        )
        assert status == 200, body
        return body


@pytest.fixture(scope="session")
async def pg() -> AsyncIterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        yield await cluster.start()
    finally:
        await cluster.destroy()


@pytest.fixture(scope="session")
async def rabbit() -> AsyncIterator[PrivateRabbit]:
    node = PrivateRabbit()
    try:
        yield await node.start()
    finally:
        await node.destroy()


@pytest.fixture(scope="session")
async def relay() -> AsyncIterator[SmtpSink]:
    sink = await SmtpSink().start()
    yield sink
    await sink.stop()


@pytest.fixture(scope="session")
async def stack(
    pg: PrivatePostgres,
    rabbit: PrivateRabbit,
    relay: SmtpSink,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    logs = tmp_path_factory.mktemp("faults-logs")
    env = clean_env(
        HELPDESK_AMQP_URL=rabbit.url,
        HELPDESK_PUBLIC_URL="http://panel.faults.example",
        AUTH_DATABASE_URL=await pg.create_database("auth"),
        TICKETS_DATABASE_URL=await pg.create_database("tickets"),
        NOTIFIER_DATABASE_URL=(notifier_db := await pg.create_database("notifier")),
        NOTIFIER_SMTP_HOST="127.0.0.1",
        NOTIFIER_SMTP_PORT=str(relay.port),
        NOTIFIER_RETRY_DELAYS=RETRY_DELAYS,
        **CHEAP_ARGON2,
        **SEALING_ENV,
    )
    code, _, err = await run_module(
        "services.auth", "create-operator", "--email", ADMIN[0], "--name", "Ada Admin",
        "--role", "admin", "--password-stdin", env=env, stdin=ADMIN[1] + "\n",
    )  # fmt: skip
    assert code == 0, err
    auth = Service("auth", env, logs)
    env |= {"TICKETS_AUTH_URL": auth.url, "NOTIFIER_AUTH_URL": auth.url}
    tickets = Service("tickets", env, logs)
    notifier = Service("notifier", env | {"NOTIFIER_INBOUND_PORT": "0"}, logs)
    stack = Stack(pg, rabbit, relay, auth, tickets, notifier, notifier_db)
    try:
        for service in stack.services:
            await service.start()
        await stack.all_ready()
        await _populate(stack)
        report(
            f"set-up: private PostgreSQL 15 on :{pg.port}, private RabbitMQ node {rabbit.node} "
            f"on :{rabbit.port}, in-process SMTP relay on :{relay.port}; auth, tickets and "
            f"notifier as processes (logs in {logs})"
        )
        yield stack
    finally:
        for service in reversed(stack.services):
            await service.stop()


async def _populate(stack: Stack) -> None:
    admin = await stack.admin()
    status, body = await stack.auth.request(
        "POST",
        "/v1/operators",
        headers=admin,
        json={"email": OPERATOR[0], "name": "Olga Operadora", "role": "operator",
              "password": OPERATOR[1]},
    )  # fmt: skip
    assert status == 201, body
    for i in range(1, CLIENTS + 1):
        status, body = await stack.auth.request(
            "POST",
            "/v1/clients",
            headers=admin,
            json={
                "name": f"Cliente {i}",
                "email": f"cliente{i}@faults.example",
                "password": CLIENT_PASSWORD,
                "services": [{"name": f"Hosting Linux Plus — c{i}.example"}],
            },
        )
        assert status == 201, body
        stack.clients.append(
            Client(body["client_number"], f"cliente{i}@faults.example", body["services"][0]["id"])
        )
    await stack.refresh_tokens()
    status, categories = await stack.tickets.request(
        "GET", "/v1/categories", headers=stack.clients[0].headers
    )
    assert status == 200, categories
    stack.category_id = categories[0]["id"]
    operator = await stack.operator()
    for client in stack.clients:
        # Tickets knows a client once auth.client.created reached its projection.
        async def opened(client: Client = client) -> int | None:
            status, body = await stack.tickets.request(
                "POST",
                "/v1/tickets",
                headers=client.headers,
                json={"service_id": client.service_id, "category_id": stack.category_id,
                      "body": "Primer ticket de prueba."},
            )  # fmt: skip
            assert status in (201, 422), body
            return body["number"] if status == 201 else None

        number = await wait_for(opened, timeout=30, interval=0.2, message="tickets knows clients")
        status, body = await stack.tickets.request(
            "POST", f"/v1/tickets/{number}/close", headers=operator
        )
        assert status == 200, body


# --- load: clients open tickets, the operator answers and closes them --------------------------


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


# --- what the relay received -------------------------------------------------------------------

RECEIPT = re.compile(r"\[#(\d+)\] Recibimos su ticket")


def receipts(received: list[Received]) -> Counter:
    """Ticket number -> receipts received."""
    found = (RECEIPT.search(str(r.message["Subject"])) for r in received)
    return Counter(int(m.group(1)) for m in found if m)


def answers(received: list[Received], label: str) -> Counter:
    """Reply text of this load -> answer emails received that quote it."""
    pattern = re.compile(rf"{re.escape(label)} reply \d+-\d+")
    return Counter(m.group(0) for r in received for m in pattern.finditer(r.text()))


def duplicate_ids(received: list[Received]) -> int:
    counts = Counter(r.message_id for r in received)
    return sum(n - 1 for n in counts.values())


def missing_emails(stack: Stack, load: Load, since: int) -> tuple[set[int], set[str]]:
    """Accepted tickets without a receipt, accepted replies without an answer."""
    got = stack.relay.received[since:]
    return (
        set(load.tickets) - set(receipts(got)),
        {text for _, text in load.replies} - set(answers(got, load.label)),
    )


async def all_delivered(stack: Stack, load: Load, since: int, timeout: float) -> None:
    """Wait until every accepted ticket has its receipt and every accepted reply its answer."""
    try:
        await wait_for(
            lambda: missing_emails(stack, load, since) == (set(), set()),
            timeout=timeout,
            interval=0.5,
            message="every due email",
        )
    except AssertionError as exc:
        tickets, replies = missing_emails(stack, load, since)
        raise AssertionError(
            f"{exc}: no receipt for tickets {sorted(tickets)}, no answer to {sorted(replies)}"
        ) from None


def exactly_once(stack: Stack, load: Load, since: int) -> tuple[int, int]:
    """Assert each due email arrived once; (receipts, answers) counted."""
    got = stack.relay.received[since:]
    got_receipts = {n: c for n, c in receipts(got).items() if n in set(load.tickets)}
    got_answers = answers(got, load.label)
    twice = {n: c for n, c in got_receipts.items() if c > 1}
    twice_answers = {t: c for t, c in got_answers.items() if c > 1}
    assert not twice and not twice_answers, (twice, twice_answers)
    assert duplicate_ids(got) == 0
    return len(got_receipts), sum(got_answers.values())


def log_dir(stack: Stack) -> Path:
    return stack.auth.log_path.parent
