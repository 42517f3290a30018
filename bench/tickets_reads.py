"""Part 5: read latency of the tickets API with a million tickets in the database.

    .venv/bin/python -m bench.tickets_reads [--tickets 1000000] [--requests 300]

Fills databases of its own (helpdesk_bench_reads_<run>_*) with COPY (clients, services, tickets,
messages), starts auth and tickets as separate processes exactly as `make run` does, on a
RabbitMQ vhost of its own, and measures, server-side (the `Server-Timing` the service reports for
each request), a client's first page, the operator queue's first page (also filtered by
assignee: mine, unassigned, and an operator's who has few tickets) and a full-text search.
Beside each figure: the same SQL run directly on the database (the ceiling), and the ratio. The
databases and the vhost are removed at the end. Results also go to
bench/results/tickets_reads.json.
"""

import argparse
import asyncio
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg

from bench.support import RESULTS, TARGETS, VAR, create_database, drop_database, met, percentile
from deploy.processes import CHEAP_ARGON2, Service, clean_env, create_operator
from deploy.rabbitmq import create_vhost, delete_vhost
from services.tickets import lifecycle, store
from services.tickets.app import MIGRATIONS
from shared import db

ADMIN = ("bench-admin@helpdesk.example", "bench admin passphrase 2026")
OPERATOR = ("bench-operator@helpdesk.example", "bench operator passphrase 2026")
CLIENT_PASSWORD = "bench client passphrase 2026"

WORDS = (
    "correo dominio servidor hosting cuenta factura pago renovación certificado ssl dns registro "
    "base datos mysql copia seguridad sitio web página error acceso clave usuario panel "
    "buzón spam envío recepción migración transferencia plan espacio disco límite php versión "
    "wordpress instalación ftp archivo subdominio redirección caída lento respuesta soporte "
    "consulta problema urgente ayuda gracias saludos cliente servicio configuración puerto"
).split()
STATUSES = ["closed"] * 70 + ["answered"] * 15 + ["customer_reply"] * 8 + ["open"] * 7
# Tickets' projection of auth's operators: the bench's admin (1) and operator (2), created
# first, and colleagues. A quarter of the tickets are unassigned; the last operator is rarely
# assigned one (their page must not scan the queue).
OPERATORS = 20
BENCH_OPERATOR = 2
ASSIGNEES = [None] * 25 + [i for i in range(1, OPERATORS) for _ in range(4)]


def assignee(rng: random.Random) -> int | None:
    """A ticket's assignee: the last operator's for one ticket in a thousand."""
    return OPERATORS if rng.random() < 0.001 else rng.choice(ASSIGNEES)


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 24))).capitalize() + "."


async def fill(conn: asyncpg.Connection, count: int, bench_client: str, services: list[dict]):
    """Clients with two services each, `count` tickets, one to three messages per ticket."""
    rng = random.Random(2026)
    clients = [str(200_000 + i) for i in range(max(1, count // 20))]
    service_rows = [(int(s["id"]), bench_client, s["name"]) for s in services]
    next_service = 1_000_000
    client_services: dict[str, list[tuple[int, str]]] = {
        bench_client: [(int(s["id"]), s["name"]) for s in services]
    }
    for number in clients:
        own = [(next_service, f"Hosting {number}"), (next_service + 1, f"Dominio {number}.com")]
        next_service += 2
        client_services[number] = own
        service_rows.extend((sid, number, name) for sid, name in own)
    await conn.copy_records_to_table(
        "client_services",
        records=service_rows,
        timeout=900,
        columns=["service_id", "client_number", "name"],
    )
    now = datetime.now(UTC)
    await conn.copy_records_to_table(
        "operators",
        records=[
            (i, f"Operador {i}", "admin" if i == 1 else "operator", False, now)
            for i in range(1, OPERATORS + 1)
        ],
        columns=["id", "name", "role", "disabled", "as_of"],
    )
    categories = [(r["id"], r["name"]) for r in await store.list_categories(conn)]
    tickets, messages = [], []
    for number in range(1, count + 1):
        # The bench client gets 40 tickets spread over the whole range; the rest at random.
        owner = bench_client if number % (count // 40 or 1) == 0 else rng.choice(clients)
        service_id, service_name = rng.choice(client_services[owner])
        category_id, subject = rng.choice(categories)
        status = rng.choice(STATUSES)
        created = now - timedelta(seconds=rng.randint(0, 3 * 365 * 86_400))
        updated = created + timedelta(seconds=rng.randint(0, 20 * 86_400))
        waiting = updated if status in ("open", "customer_reply") else None
        bodies = [sentence(rng) for _ in range(rng.choice((1, 1, 2, 3)))]
        tickets.append(
            (
                number,
                owner,
                service_id,
                service_name,
                category_id,
                subject,
                status,
                created,
                updated,
                waiting,
                bodies[-1][:160],
                lifecycle.summary(bodies[0]),
                assignee(rng),
            )
        )
        for i, body in enumerate(bodies):
            kind = "client" if i % 2 == 0 else "operator"
            sub = f"client:{owner}" if kind == "client" else "operator:1"
            messages.append(
                (number, kind, sub, "Bench", body, "api", created + timedelta(minutes=i))
            )
        if len(tickets) >= 100_000:
            await _copy(conn, tickets, messages)
            tickets, messages = [], []
            print(f"  {number:>9,} tickets", flush=True)
    await _copy(conn, tickets, messages)
    await conn.execute("SELECT setval('ticket_number_seq', $1)", count)
    await conn.execute("ANALYZE", timeout=900)


async def _copy(conn: asyncpg.Connection, tickets: list, messages: list) -> None:
    await conn.copy_records_to_table(
        "tickets",
        records=tickets,
        timeout=900,
        columns=[
            "number",
            "client_number",
            "service_id",
            "service_name",
            "category_id",
            "subject",
            "status",
            "created_at",
            "updated_at",
            "waiting_since",
            "excerpt",
            "summary",
            "assignee_id",
        ],
    )
    await conn.copy_records_to_table(
        "messages",
        records=messages,
        timeout=900,
        columns=[
            "ticket_number",
            "author_kind",
            "author_sub",
            "author_name",
            "body",
            "channel",
            "created_at",
        ],
    )


async def timed_requests(session, url: str, headers: dict, n: int) -> list[float]:
    """Server-side milliseconds of `n` sequential requests (after a warm-up)."""
    out = []
    for i in range(n + 20):
        async with session.get(url, headers=headers) as response:
            assert response.status == 200, await response.text()
            await response.read()
            server = response.headers["Server-Timing"].split("dur=")[1]
        if i >= 20:
            out.append(float(server))
    return out


async def timed_sql(pool: asyncpg.Pool, n: int, **query) -> list[float]:
    out = []
    async with pool.acquire() as conn:
        for i in range(n + 20):
            started = time.perf_counter()
            await store.list_tickets(conn, limit=21, **query)
            if i >= 20:
                out.append((time.perf_counter() - started) * 1000)
    return out


CASES = [
    ("client's first page", "/v1/tickets", "client", {}),
    ("operator queue, first page", "/v1/tickets?sort=waiting", "operator", {"sort": "waiting"}),
    ("operator list, first page", "/v1/tickets", "operator", {}),
    ("search, common word (operator)", "/v1/tickets?q=servidor", "operator",
     {"search": "servidor"}),
    ("search, two words (operator)", "/v1/tickets?q=certificado%20renovaci%C3%B3n", "operator",
     {"search": "certificado renovación"}),
    ("operator queue, assignee=me", "/v1/tickets?sort=waiting&assignee=me", "operator",
     {"sort": "waiting", "assignee_id": BENCH_OPERATOR}),
    ("operator queue, assignee=none", "/v1/tickets?sort=waiting&assignee=none", "operator",
     {"sort": "waiting", "unassigned": True}),
    ("operator list, a rare assignee", f"/v1/tickets?assignee={OPERATORS}", "operator",
     {"assignee_id": OPERATORS}),
]  # fmt: skip


async def measure(args: argparse.Namespace, amqp_url: str, urls: dict[str, str]) -> dict:
    logs = VAR / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = clean_env(
        HELPDESK_AMQP_URL=amqp_url,
        AUTH_DATABASE_URL=urls["auth"],
        TICKETS_DATABASE_URL=urls["tickets"],
        **CHEAP_ARGON2,
    )
    for (email, password), role in ((ADMIN, "admin"), (OPERATOR, "operator")):
        code, _, err = await create_operator(env, email, password, role, role.title())
        assert code == 0, err
    auth = Service("auth", env, logs, name="reads-auth")
    tickets = Service("tickets", env | {"TICKETS_AUTH_URL": auth.url}, logs, name="reads-tickets")
    pool = None
    try:
        await auth.start()
        await auth.wait_ready(timeout=60)
        async with aiohttp.ClientSession() as http:

            async def token(username: str, password: str) -> dict:
                body = {"username": username, "password": password}
                async with http.post(f"{auth.url}/v1/token", json=body) as r:
                    assert r.status == 200, await r.text()
                    return {"Authorization": f"Bearer {(await r.json())['access_token']}"}

            admin = await token(*ADMIN)
            body = {
                "name": "Cliente de prueba",
                "email": "bench@example.com",
                "services": [{"name": "Hosting Linux Plus"}, {"name": "Dominio example.com"}],
                "password": CLIENT_PASSWORD,
            }
            async with http.post(f"{auth.url}/v1/clients", json=body, headers=admin) as r:
                assert r.status == 201, await r.text()
                bench_client = await r.json()
            await db.migrate(urls["tickets"], "tickets", MIGRATIONS)
            pool = await db.create_pool(urls["tickets"])
            print(f"filling {args.tickets:,} tickets with COPY...", flush=True)
            started = time.perf_counter()
            async with pool.acquire() as conn:
                await fill(
                    conn, args.tickets, bench_client["client_number"], bench_client["services"]
                )
            print(f"filled in {time.perf_counter() - started:.0f} s", flush=True)
            client_number = bench_client["client_number"]
            total = await pool.fetchval("SELECT count(*) FROM tickets")
            headers = {
                "client": await token(client_number, CLIENT_PASSWORD),
                "operator": await token(*OPERATOR),
            }
            await tickets.start()
            await tickets.wait_ready(timeout=60)
            results = []
            for label, path, who, sql_args in CASES:
                if who == "client":
                    sql_args = {"client_number": client_number}
                served = await timed_requests(http, tickets.url + path, headers[who], args.requests)
                direct = await timed_sql(pool, args.requests, **sql_args)
                results.append(
                    {
                        "case": label,
                        "server_p50_ms": percentile(served, 50),
                        "server_p99_ms": percentile(served, 99),
                        "sql_p50_ms": percentile(direct, 50),
                        "sql_p99_ms": percentile(direct, 99),
                        "ratio_p50": percentile(served, 50) / percentile(direct, 50),
                    }
                )
    finally:
        if pool is not None:
            await pool.close()
        await tickets.stop()
        await auth.stop()
    return {
        "tickets": total,
        "requests": args.requests,
        "measured_at": datetime.now(UTC).isoformat(),
        "results": results,
    }


async def run(args: argparse.Namespace) -> dict:
    """The reads on databases and a vhost made for this run and removed after it."""
    run_id = uuid.uuid4().hex[:8]
    vhost = f"helpdesk-bench-reads-{run_id}"
    names = {s: f"helpdesk_bench_reads_{run_id}_{s}" for s in ("auth", "tickets")}
    amqp_url = create_vhost(vhost)
    try:
        urls = {s: await create_database(n) for s, n in names.items()}
        result = await measure(args, amqp_url, urls)
    finally:
        delete_vhost(vhost)
        for name in names.values():
            await drop_database(name)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tickets_reads.json").write_text(json.dumps(result, indent=2))
    return result


def lines(r: dict) -> list[str]:
    out = [
        f"5. Reads with {r['tickets']:,} tickets, {r['requests']} requests a case one at a time,"
        " server-side (Server-Timing) vs the same SQL alone",
        f"   {'case':34}{'p50 ms':>9}{'p99 ms':>9}{'SQL p50':>9}{'SQL p99':>9}{'ratio p50':>11}"
        "  target p99 < 20 ms",
    ]
    for case in r["results"]:
        out.append(
            f"   {case['case']:34}{case['server_p50_ms']:>9.2f}{case['server_p99_ms']:>9.2f}"
            f"{case['sql_p50_ms']:>9.2f}{case['sql_p99_ms']:>9.2f}{case['ratio_p50']:>10.1f}x"
            f"  {met(case['server_p99_ms'] < TARGETS['read_p99_ms'])}"
        )
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    print("\n".join(lines(await run(args))))


if __name__ == "__main__":
    asyncio.run(main())
