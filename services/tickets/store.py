"""All of tickets' SQL, and only SQL; but for the statements of a new ticket and of a reply,
which run in functions of the database (`open_ticket` and `add_reply`, migrations/0004 and 0005;
`create_ticket` and `add_reply` say why)."""

import json
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from shared.events import Envelope
from shared.logging import current_correlation_id
from shared.outbox import EVENT_COLUMNS

Conn = asyncpg.Connection
Record = asyncpg.Record

_TICKET_COLUMNS = """
    t.number, t.client_number, t.service_id, t.service_name, t.category_id, t.subject,
    t.status, t.created_at, t.updated_at, t.excerpt, t.waiting_since
"""

# --- categories --------------------------------------------------------------------------------


async def list_categories(conn: Conn) -> list[Record]:
    return await conn.fetch("SELECT id, name FROM categories ORDER BY name")


async def insert_category(conn: Conn, name: str) -> Record | None:
    """None when a category of that name (any case) exists."""
    return await conn.fetchrow(
        "INSERT INTO categories (name) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id, name",
        name,
    )


# --- the projection of clients' services -------------------------------------------------------


async def claim_services_version(conn: Conn, client_number: str, as_of: datetime) -> bool:
    """True when `as_of` is newer than the client's current list (which it then becomes)."""
    return bool(
        await conn.fetchval(
            """
            INSERT INTO client_services_versions (client_number, as_of) VALUES ($1, $2)
            ON CONFLICT (client_number) DO UPDATE SET as_of = excluded.as_of
                WHERE client_services_versions.as_of < excluded.as_of
            RETURNING true
            """,
            client_number,
            as_of,
        )
    )


async def replace_client_services(
    conn: Conn, client_number: str, services: Sequence[tuple[int, str]]
) -> None:
    """The client's services become exactly `services` [(id, name)]."""
    await conn.executemany(
        """
        INSERT INTO client_services (service_id, client_number, name) VALUES ($1, $2, $3)
        ON CONFLICT (service_id) DO UPDATE
            SET client_number = excluded.client_number, name = excluded.name, updated_at = now()
        """,
        [(service_id, client_number, name) for service_id, name in services],
    )
    await conn.execute(
        "DELETE FROM client_services WHERE client_number = $1 AND NOT service_id = ANY($2)",
        client_number,
        [service_id for service_id, _ in services],
    )


# --- tickets and messages ----------------------------------------------------------------------


async def create_ticket(
    conn: Conn,
    *,
    client_number: str,
    service_id: int,
    category_id: int,
    excerpt: str,
    author_sub: str,
    author_name: str,
    body: str,
    channel: str,
    refuse_duplicate: bool,
    event: Envelope,
) -> Record:
    """A new ticket, its first message and its event: `service_found` false when the service is
    not the client's, `category_found` when there is no such category, `duplicate` the number of
    the client's ticket about this service and category that is not closed (when
    `refuse_duplicate`); in each case nothing is inserted. Otherwise the ticket's row (columns as
    `get_ticket` has them, with the category's name as `subject`) with `message_id` and
    `message_created_at`. `event`'s number, subject and service name are filled in here.

    One round trip, and its own transaction outside the caller's: the function `open_ticket`
    (migrations/0004_open_ticket.sql) looks up the service, the category and the number, takes
    the client's lock, then checks and inserts in a statement of its own, which sees every ticket
    the client's previous requests committed. As statements of ours, lock and check needed a
    transaction around them, BEGIN and COMMIT two more round trips. Four round trips, then two,
    then one: under `make bench`, tickets' CPU per ticket created went 0.69, 0.58 - 0.65, 0.54 -
    0.56 ms and PostgreSQL's 0.55, 0.50 - 0.54, 0.42 - 0.45 ms (each round trip also wakes both
    processes, which a half-idle process pays for dearly)."""
    return await conn.fetchrow(
        "SELECT * FROM open_ticket($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13)",
        client_number,
        service_id,
        category_id,
        excerpt,
        author_sub,
        author_name,
        body,
        channel,
        refuse_duplicate,
        event.id,
        event.type,
        event.model_dump_json(),
        current_correlation_id(),
    )


async def add_reply(
    conn: Conn,
    *,
    number: int,
    aggregate: str,
    client_number: str | None,
    author_kind: str,
    author_sub: str,
    author_name: str,
    body: str,
    channel: str,
    excerpt: str,
    status_after: dict[str, str],
    waiting: Sequence[str],
    event: Envelope,
) -> Record:
    """A reply to ticket `number`, visible to the client `client_number` (None: to anyone):
    `found` false when it is not (nothing changes); `status_before` the ticket's status, and
    nothing changes when `status_after` (status before -> status after this reply) does not hold
    it. Otherwise the message is added, the ticket gets its new status (its wait starts or goes
    on when that is one of `waiting`), the new `excerpt` and `event` for `aggregate` (its client,
    subject and message id filled in here), and `message_id` and `message_created_at` are the
    message's.

    One round trip, the function `add_reply` (migrations/0005_add_reply.sql): the lock of the
    ticket, the check and the writes as statements of ours took four (BEGIN, SELECT ... FOR
    UPDATE, the writes, COMMIT), and at a steady 200 replies a second each round trip wakes both
    processes for little work: under `make bench` at 200 replies/s, tickets' CPU per reply went
    2.05 -> 1.73 ms, PostgreSQL's 1.90 -> 1.78 ms, and the notification p99 184 - 235 ms ->
    49 - 66 ms. Inside a caller's transaction (an Idempotency-Key's claim) it is one statement of
    that transaction."""
    return await conn.fetchrow(
        "SELECT * FROM add_reply($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12,"
        " $13, $14::jsonb, $15)",
        number,
        client_number,
        author_kind,
        author_sub,
        author_name,
        body,
        channel,
        excerpt,
        json.dumps(status_after),
        list(waiting),
        event.id,
        event.type,
        aggregate,
        event.model_dump_json(),
        current_correlation_id(),
    )


def _set_state(number: str, *, status: str, waiting: str, excerpt: str) -> str:
    """The UPDATE of a ticket's state, with the placeholders of the statement it goes into: a
    change of status is new activity; `waiting` starts (or keeps) the client's wait."""
    return f"""
        UPDATE tickets SET
            status = {status},
            updated_at = now(),
            waiting_since = CASE WHEN {waiting} THEN coalesce(waiting_since, now()) END,
            excerpt = coalesce({excerpt}, excerpt)
        WHERE number = {number}
    """


# A message, the ticket's new state (new activity) and the event, in one statement: three
# round trips were half of what a reply cost.
_ADD_MESSAGE = f"""
WITH m AS (
    INSERT INTO messages (id, ticket_number, author_kind, author_sub, author_name, body, channel)
    OVERRIDING SYSTEM VALUE  -- the id is the identity's own, drawn ahead by get_ticket
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING created_at
), t AS (
    {_set_state("$2", status="$8", waiting="$9", excerpt="$10")}
), o AS (
    INSERT INTO outbox ({EVENT_COLUMNS}) VALUES ($11, $12, $13, $14::jsonb, $15)
)
SELECT created_at FROM m
"""


async def add_message(
    conn: Conn,
    *,
    message_id: int,
    ticket_number: int,
    author_kind: str,
    author_sub: str,
    author_name: str,
    body: str,
    channel: str,
    status: str,
    waiting: bool,
    excerpt: str,
    event: list[object],
) -> datetime:
    """Add message `message_id` (drawn by `get_ticket`), set the ticket's status as
    `set_ticket_state` does, and store `event` (`outbox.event_values`); the message's
    `created_at`."""
    return await conn.fetchval(
        _ADD_MESSAGE,
        message_id,
        ticket_number,
        author_kind,
        author_sub,
        author_name,
        body,
        channel,
        status,
        waiting,
        excerpt,
        *event,
    )


async def get_ticket(
    conn: Conn, number: int, *, for_update: bool = False, draw_message_id: bool = False
) -> Record | None:
    """The ticket's row with `category_name`; `for_update` locks it, `draw_message_id` adds
    `message_id`, the id of a message about to be added (`add_message`), saving that insert
    from returning it before the event that names it can be written."""
    drawn = ", nextval(pg_get_serial_sequence('messages', 'id')) AS message_id"
    query = f"""
        SELECT {_TICKET_COLUMNS}, c.name AS category_name{drawn if draw_message_id else ""}
        FROM tickets t JOIN categories c ON c.id = t.category_id
        WHERE t.number = $1
    """
    return await conn.fetchrow(query + (" FOR UPDATE OF t" if for_update else ""), number)


async def ticket_messages(conn: Conn, number: int) -> list[Record]:
    return await conn.fetch(
        """
        SELECT id, author_kind, author_name, body, created_at FROM messages
        WHERE ticket_number = $1 ORDER BY id
        """,
        number,
    )


async def set_ticket_state(
    conn: Conn, number: int, *, status: str, waiting: bool, excerpt: str | None
) -> None:
    """A change of status is new activity; `waiting` starts (or keeps) the client's wait."""
    await conn.execute(
        _set_state("$1", status="$2", waiting="$3", excerpt="$4"),
        number,
        status,
        waiting,
        excerpt,
    )


async def list_tickets(
    conn: Conn,
    *,
    limit: int,
    client_number: str | None = None,
    statuses: Sequence[str] | None = None,
    search: str | None = None,
    sort: str = "activity",
    after: tuple[datetime, int] | None = None,
) -> list[Record]:
    """One page, keyset-paginated. The WHERE clause is put together from the fixed fragments
    below (values are always bound parameters): a single query with `$n IS NULL OR ...` for every
    optional filter would get a generic plan that cannot use the right index."""
    where: list[str] = []
    args: list[object] = []

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if client_number is not None:
        where.append(f"t.client_number = {param(client_number)}")
    if statuses:
        where.append(f"t.status = ANY({param(list(statuses))}::text[])")
    if search is not None:
        where.append(
            "EXISTS (SELECT 1 FROM messages m WHERE m.ticket_number = t.number"
            f" AND m.search @@ websearch_to_tsquery('helpdesk_es', {param(search)}))"
        )
    if sort == "waiting":
        where.append("t.waiting_since IS NOT NULL")
        order = "t.waiting_since ASC, t.number ASC"
        if after is not None:
            where.append(f"(t.waiting_since, t.number) > ({param(after[0])}, {param(after[1])})")
    else:
        order = "t.updated_at DESC, t.number DESC"
        if after is not None:
            where.append(f"(t.updated_at, t.number) < ({param(after[0])}, {param(after[1])})")
    query = f"""
        SELECT {_TICKET_COLUMNS}, c.name AS category_name
        FROM tickets t JOIN categories c ON c.id = t.category_id
        {"WHERE " + " AND ".join(where) if where else ""}
        ORDER BY {order}
        LIMIT {param(limit)}
    """
    return await conn.fetch(query, *args)


# --- idempotency keys --------------------------------------------------------------------------


async def claim_idempotency_key(
    conn: Conn, principal: str, key: str, fingerprint: str, keep_seconds: float
) -> Record | None:
    """Claim the key in the caller's transaction: None when claimed now (new, or older than
    `keep_seconds` and so free again), else the stored `fingerprint` and `response`. One
    statement that locks the key's row: a claim by a transaction still running makes this one
    wait for it; if that commits, its response is returned; if it rolls back (the request
    failed), the key is claimed now. A committed row always has its response (it is saved in
    the same transaction), so a null `response` means claimed by this statement."""
    row = await conn.fetchrow(
        """
        INSERT INTO idempotency_keys AS k (principal, key, fingerprint) VALUES ($1, $2, $3)
        ON CONFLICT (principal, key) DO UPDATE SET
            fingerprint = CASE WHEN k.created_at < now() - make_interval(secs => $4)
                               THEN excluded.fingerprint ELSE k.fingerprint END,
            response = CASE WHEN k.created_at < now() - make_interval(secs => $4)
                            THEN NULL ELSE k.response END,
            created_at = CASE WHEN k.created_at < now() - make_interval(secs => $4)
                              THEN now() ELSE k.created_at END
        RETURNING fingerprint, response
        """,
        principal,
        key,
        fingerprint,
        keep_seconds,
    )
    return None if row["response"] is None else row


async def save_idempotent_response(conn: Conn, principal: str, key: str, response: str) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET response = $3 WHERE principal = $1 AND key = $2",
        principal,
        key,
        response,
    )


async def purge_idempotency_keys(conn: Conn, older_than_seconds: float) -> int:
    result = await conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
        older_than_seconds,
    )
    return int(result.split()[-1])
