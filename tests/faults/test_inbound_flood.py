"""Issue 17: one inbound message must not freeze the notifier (SPEC §9.3).

`python -m services.notifier` as a real process gets a 1 MiB header bomb (a Subject of encoded
words, a long Precedence, long References): its SMTP answer comes within 1 s, `/healthz`
answers every poll within 200 ms meanwhile, and a receipt queued at the same moment reaches the
relay within 2 s. Before the fix the bomb held the event loop for seconds to a minute, and all
outgoing email and `/healthz` with it. Then a flood of such messages on many connections at
once, with the same promises.

These timings are what a user notices, so they are checked where nothing else competes for the
machine: in `make faults`, one test at a time (under `make test`'s parallel workers on two cores,
/healthz once took 227 ms for the load of the other tests, not of the flood). Every wait is a
deadline, and the measures are printed (`-s`).
"""

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from deploy.processes import ROOT, Service, notifier_env
from services.notifier.app import MIGRATIONS
from shared import events
from tests.notifier.conftest import Publisher, publisher, smtp, vhost
from tests.security.messages import header_bomb, smtp_answer
from tests.support.infra import DatabaseFactory
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_for

# The notifier's tests' fixtures: a vhost of its own, the SMTP sink, a publisher.
__all__ = ["publisher", "smtp", "vhost"]

CLIENT_EMAIL = "ana@example.com"
SERVICE = events.ServiceRef(id=1, name="Hosting Linux Plus")
ANSWER_WITHIN = 1.0
HEALTHZ_WITHIN = 0.2
RECEIPT_WITHIN = 2.0


@pytest.fixture
async def notifier(
    databases: DatabaseFactory, vhost: str, smtp: SmtpSink, tmp_path: Path
) -> AsyncIterator[Service]:
    env = notifier_env(await databases.migrated("notifier", MIGRATIONS), vhost, smtp.port)
    service = await Service("notifier", env, tmp_path).start()
    try:
        await service.wait_ready()
        yield service
    finally:
        await service.stop()


def inbound_port(service: Service) -> int:
    return int(service.env["NOTIFIER_INBOUND_PORT"])


async def known_client(service: Service, publisher: Publisher) -> None:
    created = events.ClientCreated(
        client_number="1003", name="Ana", email=CLIENT_EMAIL, language="es", services=[SERVICE]
    )
    await publisher.event(created)
    connection = await asyncpg.connect(service.env["NOTIFIER_DATABASE_URL"])
    try:

        async def projected() -> bool:
            query = "SELECT 1 FROM clients WHERE email = $1"
            return bool(await connection.fetchval(query, CLIENT_EMAIL))

        await wait_for(projected, timeout=15, message="the client projection")
    finally:
        await connection.close()


@dataclass
class HealthPoller:
    """GET /healthz every 20 ms until stopped; every answer's time is kept."""

    url: str
    times: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    async with session.get(self.url + "/healthz") as response:
                        await response.read()
                        if response.status != 200:
                            self.failures.append(f"status {response.status}")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.failures.append(repr(exc))
                self.times.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()


async def receipt_delivery(publisher: Publisher, smtp: SmtpSink, number: int) -> float:
    """Queue a receipt (tickets.ticket.created) and wait until the relay has it: seconds taken."""
    created = events.TicketCreated(
        number=number, client_number="1003", subject="Correo", service=SERVICE, body="Hola"
    )
    started = time.perf_counter()
    envelope = await publisher.event(created)
    message_id = f"<{envelope.id}@helpdesk.example>"
    await wait_for(
        lambda: smtp.with_id(message_id),
        timeout=RECEIPT_WITHIN + 8,  # fail with a measure, not a timeout, when it is late
        interval=0.01,
        message=f"the receipt of ticket {number}",
    )
    return time.perf_counter() - started


def report(what: str, poller: HealthPoller, **measures: float) -> None:
    figures = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in measures.items())
    worst = max(poller.times, default=0)
    print(f"\n{what}: {figures}; /healthz {len(poller.times)} polls, slowest {worst * 1000:.0f} ms")


def assert_healthz_kept_answering(poller: HealthPoller) -> None:
    assert not poller.failures, poller.failures[:3]
    assert len(poller.times) >= 5, "too few polls to tell"
    slow = [round(t * 1000) for t in poller.times if t >= HEALTHZ_WITHIN]
    assert not slow, f"/healthz answers over {HEALTHZ_WITHIN * 1000:.0f} ms: {slow}"


async def test_a_header_bomb_is_answered_at_once_and_freezes_nothing(
    notifier: Service, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher)
    bomb = header_bomb()
    assert 1_000_000 < len(bomb) <= 1024 * 1024
    poller = HealthPoller(notifier.url)
    polling = asyncio.create_task(poller.run())
    await asyncio.sleep(0.2)  # polls before the bomb, as a baseline
    (code, answered_in), delivered_in = await asyncio.gather(
        smtp_answer(inbound_port(notifier), bomb),
        receipt_delivery(publisher, smtp, 77),
    )
    await asyncio.sleep(0.2)
    poller.stop()
    await polling
    report("header bomb", poller, answer=answered_in, receipt=delivered_in)
    assert code == 552
    assert answered_in < ANSWER_WITHIN, f"the bomb was answered after {answered_in:.2f} s"
    assert delivered_in < RECEIPT_WITHIN, f"the receipt took {delivered_in:.2f} s"
    assert_healthz_kept_answering(poller)
    notifier.check_running()


async def test_a_flood_of_inbound_mail_leaves_outgoing_mail_and_healthz_alone(
    notifier: Service, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher)
    poller = HealthPoller(notifier.url)
    polling = asyncio.create_task(poller.run())
    flood = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.security.flood",
        str(inbound_port(notifier)),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    await asyncio.sleep(0.5)  # the flood under way
    delivered_in = [await receipt_delivery(publisher, smtp, 100 + n) for n in range(3)]
    out, _ = await asyncio.wait_for(flood.communicate(), 120)
    poller.stop()
    await polling
    assert flood.returncode == 0
    answers = json.loads(out)
    slowest = max(t for _, t in answers)
    report(
        f"flood of {len(answers)} messages on 9 connections",
        poller,
        slowest_answer=slowest,
        slowest_receipt=max(delivered_in),
    )
    assert sorted({code for code, _ in answers}) == [250, 552]
    assert max(delivered_in) < RECEIPT_WITHIN, f"receipts took {delivered_in}"
    assert_healthz_kept_answering(poller)
    notifier.check_running()
