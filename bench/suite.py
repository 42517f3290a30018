"""The suite as `make run` has it, for the benchmark: auth, tickets and the notifier as separate
processes, an SMTP sink that notes when each email is accepted (bench/sink.py), on databases
helpdesk_bench_<run>_* and a RabbitMQ vhost of their own, all removed at the end; the staff,
the clients the load generators act as, and the helpers the parts share (waiting for the outbox
and the notifier to drain, the sink's record)."""

import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg

from bench.machine import CpuMeter, postmaster_pid, rabbit_pid
from bench.support import VAR, create_database, drop_database, log, wait_until
from deploy.processes import CHEAP_ARGON2, Program, Service, clean_env, create_operator, free_port
from deploy.rabbitmq import create_vhost, delete_vhost

ADMIN = ("bench-admin@helpdesk.example", "bench admin passphrase 2026")
OPERATOR = ("bench-operator@helpdesk.example", "bench operator passphrase 2026")
CLIENT_PASSWORD = "bench client passphrase 2026"
SERVICES = ("auth", "tickets", "notifier")


@dataclass
class Suite:
    run: str
    amqp_url: str
    urls: dict[str, str]
    env: dict[str, str]
    logs: Path
    sink: Program
    sink_out: Path
    auth: Service
    tickets: list[Service]  # tickets-2 runs only in the two-instance creation rounds
    notifier: Service
    tickets_db: asyncpg.Pool
    notifier_db: asyncpg.Pool
    http: aiohttp.ClientSession
    meter: CpuMeter = field(init=False)
    admin: dict[str, str] = field(default_factory=dict)
    operator_token: str = ""
    clients: list[dict] = field(default_factory=list)  # one per load connection, then one more
    client_tokens: list[str] = field(default_factory=list)
    category_id: int = 0

    async def start(self, program: Service) -> None:
        """Start `program` (stopped first if it runs), wait until it is ready and count its
        CPU."""
        await program.stop()
        await program.start()
        await program.wait_ready(timeout=60)
        assert program.proc is not None
        self.meter.services[program.name] = program.proc.pid

    async def call(self, method: str, url: str, headers=None, **kw) -> dict:
        async with self.http.request(method, url, headers=headers, **kw) as r:
            assert r.status in (200, 201), f"{method} {url}: {r.status} {await r.text()}"
            return await r.json()

    async def token(self, username: str, password: str) -> str:
        body = {"username": username, "password": password}
        return (await self.call("POST", f"{self.auth.url}/v1/token", json=body))["access_token"]

    @property
    def load_clients(self) -> list[dict]:
        return self.clients[:-1]

    @property
    def pgbench_variables(self) -> dict[str, int]:
        """The arithmetic of bench/create_ticket.sql: client cbase + i owns service sbase + i."""
        first = self.load_clients[0]
        cbase, sbase = int(first["client_number"]), int(first["services"][0]["id"])
        return {"cbase": cbase, "sbase": sbase, "cat": self.category_id}

    def wrk_lines(self, targets: list[Service]) -> list[str]:
        """bench/create_tickets.lua's job: worker i acts as load client i, on targets[i % n]."""
        lines = []
        for i, (client, token) in enumerate(
            zip(self.load_clients, self.client_tokens, strict=True)
        ):
            target = targets[i % len(targets)]
            service_id = client["services"][0]["id"]
            lines.append(f"127.0.0.1 {target.port} {token} {service_id} {self.category_id}")
        return lines

    async def outbox_drained(self, timeout: float = 120) -> float:
        """Seconds until every event in the tickets outbox is published."""
        started = time.monotonic()
        while await self.tickets_db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"the outbox did not drain in {timeout:.0f} s")
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    async def mark_outbox_sent(self) -> None:
        """The rows of a run with no relay (pgbench's, the floor's): no relay may publish them
        later, in the middle of another run."""
        await self.tickets_db.execute("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL")

    @contextlib.asynccontextmanager
    async def _queue(self, queue: str) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
        """`queue` as a passive declare finds it, on a connection of its own for the block."""
        connection = await aio_pika.connect(self.amqp_url, timeout=10)
        try:
            channel = await connection.channel()
            yield await channel.declare_queue(queue, passive=True)
        finally:
            await connection.close()

    async def queue_depth(self, queue: str = "notifier.events") -> int:
        """Messages ready in `queue` (a passive declare; rabbitmqctl would cost a CPU-second)."""
        async with self._queue(queue) as declared:
            return declared.declaration_result.message_count or 0

    async def purge_queue(self, queue: str = "notifier.events") -> int:
        async with self._queue(queue) as declared:
            return (await declared.purge()).message_count or 0

    async def emails_sent(self) -> int:
        return await self.notifier_db.fetchval("SELECT count(*) FROM emails WHERE status = 'sent'")

    async def drained(self, timeout: float = 240, interval: float = 0.5) -> float:
        """Seconds until the outbox is relayed, the notifier's queue is empty and no email is
        being sent."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            unsent = await self.tickets_db.fetchval(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
            )
            busy = await self.notifier_db.fetchval(
                "SELECT count(*) FROM emails WHERE status NOT IN ('sent', 'dead')"
            )
            if unsent == 0 and busy == 0 and await self.queue_depth() == 0:
                return time.monotonic() - started
            await asyncio.sleep(interval)
        raise RuntimeError(f"the suite did not drain in {timeout:.0f} s")

    async def accepted_emails(self) -> dict[str, float]:
        """The sink's record so far: the time each reply token's email was accepted."""
        self.sink_out.unlink(missing_ok=True)
        assert self.sink.proc is not None
        self.sink.proc.send_signal(signal.SIGUSR1)

        async def written() -> bool:
            return self.sink_out.exists()

        await wait_until(written, 60, "the sink's record")
        accepted: dict[str, float] = {}
        for line in self.sink_out.read_text().splitlines():
            row = json.loads(line)
            if row["token"]:
                accepted.setdefault(row["token"], row["t"])
        return accepted


async def _create_staff_and_clients(suite: Suite, connections: int) -> None:
    for (email, password), role in ((ADMIN, "admin"), (OPERATOR, "operator")):
        code, _, err = await create_operator(suite.env, email, password, role, f"Bench {role}")
        assert code == 0, err
    suite.admin = {"Authorization": f"Bearer {await suite.token(*ADMIN)}"}
    suite.operator_token = await suite.token(*OPERATOR)
    # One client per load connection (ticket creation serialises per client), created first and
    # in order, plus one client whose replies the notifier emails.
    for i in range(connections + 1):
        body = {
            "name": f"Bench client {i}",
            "email": f"client{i}@bench.example",
            "services": [{"name": f"Hosting bench {i}"}],
            "password": CLIENT_PASSWORD,
        }
        made = await suite.call("POST", f"{suite.auth.url}/v1/clients", suite.admin, json=body)
        suite.clients.append(made)
    numbers = [c["client_number"] for c in suite.clients]

    async def projected() -> bool:
        known_t = await suite.tickets_db.fetchval(
            "SELECT count(DISTINCT client_number) FROM client_services"
            " WHERE client_number = ANY($1::text[])",
            numbers,
        )
        known_n = await suite.notifier_db.fetchval(
            "SELECT count(*) FROM clients WHERE client_number::text = ANY($1::text[])"
            " AND email IS NOT NULL",
            numbers,
        )
        return known_t == known_n == len(numbers)

    await wait_until(projected, 60, "the clients in the tickets and notifier projections")
    categories = await suite.call("GET", f"{suite.tickets[0].url}/v1/categories", suite.admin)
    items = categories["items"] if isinstance(categories, dict) else categories
    suite.category_id = items[0]["id"]
    variables = suite.pgbench_variables
    for i, c in enumerate(suite.load_clients):  # the arithmetic bench/create_ticket.sql uses
        assert int(c["client_number"]) == variables["cbase"] + i, c
        assert int(c["services"][0]["id"]) == variables["sbase"] + i, c
    suite.client_tokens = [
        await suite.token(c["client_number"], CLIENT_PASSWORD) for c in suite.load_clients
    ]


@contextlib.asynccontextmanager
async def running_suite(connections: int) -> AsyncIterator[Suite]:
    """The suite up (auth, tickets-1, the notifier, the sink) with its staff and `connections`
    load clients; everything it made is removed on the way out."""
    run = uuid.uuid4().hex[:8]
    vhost = f"helpdesk-bench-{run}"
    amqp_url = create_vhost(vhost)
    names = {s: f"helpdesk_bench_{run}_{s}" for s in SERVICES}
    VAR.mkdir(exist_ok=True)
    logs = VAR / "bench-logs"
    logs.mkdir(exist_ok=True)
    programs: list[Program] = []
    pools: list[asyncpg.Pool] = []
    try:
        urls = {s: await create_database(n) for s, n in names.items()}
        sink_port, sink_out = free_port(), VAR / f"bench-sink-{run}.jsonl"
        env = clean_env(
            HELPDESK_AMQP_URL=amqp_url,
            AUTH_DATABASE_URL=urls["auth"],
            TICKETS_DATABASE_URL=urls["tickets"],
            NOTIFIER_DATABASE_URL=urls["notifier"],
            NOTIFIER_SMTP_HOST="127.0.0.1",
            NOTIFIER_SMTP_PORT=str(sink_port),
            NOTIFIER_INBOUND_PORT=str(free_port()),
            **CHEAP_ARGON2,
        )
        sink = Program(
            "sink", "bench.sink", env, logs, "--port", str(sink_port), "--out", str(sink_out)
        )
        auth = Service("auth", env, logs)
        env |= {"TICKETS_AUTH_URL": auth.url, "NOTIFIER_AUTH_URL": auth.url}
        tickets = [Service("tickets", env, logs, name=f"tickets-{i}") for i in (1, 2)]
        notifier = Service("notifier", env, logs)
        programs = [sink, auth, *tickets, notifier]
        await sink.start()
        for service in (auth, tickets[0], notifier):
            await service.start()
            await service.wait_ready(timeout=60)
        pools = [
            await asyncpg.create_pool(urls[s], min_size=1, max_size=2)
            for s in ("tickets", "notifier")
        ]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            suite = Suite(
                run,
                amqp_url,
                urls,
                env,
                logs,
                sink,
                sink_out,
                auth,
                tickets,
                notifier,
                *pools,
                http,
            )
            pids = {s.name: s.proc.pid for s in (auth, tickets[0], notifier) if s.proc}
            assert sink.proc is not None
            suite.meter = CpuMeter(
                pids | {"sink": sink.proc.pid}, await postmaster_pid(pools[0]), rabbit_pid()
            )
            log(f"suite {run} ready (auth, tickets, notifier, SMTP sink), pids {pids}")
            await _create_staff_and_clients(suite, connections)
            yield suite
    finally:
        for program in reversed(programs):
            await program.stop()
        for pool in pools:
            await pool.close()
        delete_vhost(vhost)
        for name in names.values():
            await drop_database(name)
        (VAR / f"bench-sink-{run}.jsonl").unlink(missing_ok=True)
        log(f"suite {run} removed (vhost {vhost}, databases helpdesk_bench_{run}_*)")
