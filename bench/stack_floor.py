"""The stack's floor for ticket creation: what aiohttp and asyncpg alone cost for the same SQL.

A bare aiohttp application (on uvloop, with a pool from shared.db.create_pool, as the tickets
service has them) whose POST /v1/tickets reads the JSON body and sends the statements of
POST /v1/tickets, through the tickets service's own `store` functions and the outbox's INSERT,
in one transaction (as bench/create_ticket.sql sends them under pgbench), then answers 201 with
the ticket's number. Nothing else: no token checked, no validation by pydantic, no rule, no log
line, no metrics, no relay publishing the event (its outbox rows are marked sent afterwards, as
pgbench's are). No service of the decided stack can create tickets this way faster on the same
machine, so it tells how much of the distance between the API and pgbench's ceiling is the
stack's and how much is the service's.

    FLOOR_PORT=N FLOOR_HOST=127.0.0.1 FLOOR_DATABASE_URL=... FLOOR_CBASE=100001 FLOOR_SBASE=1 \
        python -m bench.stack_floor

The service of client `FLOOR_CBASE + i` is `FLOOR_SBASE + i`, the arithmetic of
bench/create_ticket.sql; GET /readyz answers 200 once the pool is open.
"""

import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import uvloop
from aiohttp import web

from services.tickets import store
from shared.db import create_pool
from shared.outbox import INSERT_EVENT

POOL = web.AppKey("pool", asyncpg.Pool)
# Client FLOOR_CBASE + i owns service FLOOR_SBASE + i: the difference, read once at start.
CLIENT_OFFSET = web.AppKey("client_offset", int)


async def create_ticket(request: web.Request) -> web.Response:
    new = json.loads(await request.read())
    service_id, category_id, body = int(new["service_id"]), int(new["category_id"]), new["body"]
    client = str(service_id + request.app[CLIENT_OFFSET])
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await store.lock_client_tickets(conn, client)
        facts = await store.new_ticket_facts(conn, client, service_id, category_id)
        row = await store.insert_ticket(
            conn,
            client_number=client,
            service_id=service_id,
            service_name=facts["service_name"],
            category_id=category_id,
            subject=facts["category_name"],
            status="open",
            waiting=True,
            excerpt=body[:160],
            author_sub=f"client:{client}",
            author_name="Bench client",
            body=body,
            channel="api",
        )
        event_id = uuid.uuid4()
        event = {
            "id": str(event_id),
            "type": "tickets.ticket.created",
            "version": 1,
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {
                "number": row["number"],
                "client_number": client,
                "subject": facts["category_name"],
                "service": {"id": service_id, "name": facts["service_name"]},
                "body": body,
            },
        }
        await conn.executemany(
            INSERT_EVENT,
            [(event_id, event["type"], f"ticket:{row['number']}", json.dumps(event), None)],
        )
    return web.json_response({"number": row["number"]}, status=201)


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def open_pool(app: web.Application) -> AsyncIterator[None]:
    app[POOL] = await create_pool(os.environ["FLOOR_DATABASE_URL"])
    yield
    await app[POOL].close()


def main() -> None:
    app = web.Application()
    app[CLIENT_OFFSET] = int(os.environ["FLOOR_CBASE"]) - int(os.environ["FLOOR_SBASE"])
    app.cleanup_ctx.append(open_pool)
    app.router.add_post("/v1/tickets", create_ticket)
    app.router.add_get("/readyz", ready)
    web.run_app(
        app,
        host=os.environ.get("FLOOR_HOST", "127.0.0.1"),
        port=int(os.environ["FLOOR_PORT"]),
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
