"""All of tickets' SQL, and only SQL."""

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

Conn = asyncpg.Connection
Record = asyncpg.Record

_TICKET_COLUMNS = """
    t.number, t.client_number, t.service_id, t.service_name, t.category_id, t.subject,
    t.status, t.created_at, t.updated_at, t.excerpt, t.waiting_since, t.summary, t.assignee_id
"""
# What the ticket queries join for `assignee_name` (operators' own data: desk shows it to them).
_ASSIGNEE = "LEFT JOIN operators o ON o.id = t.assignee_id"

# --- categories --------------------------------------------------------------------------------


async def list_categories(conn: Conn, *, include_disabled: bool = False) -> list[Record]:
    """The categories offered for new tickets; with `include_disabled`, every one."""
    return await conn.fetch(
        "SELECT id, name, disabled FROM categories WHERE $1 OR NOT disabled ORDER BY name",
        include_disabled,
    )


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


async def lock_client_tickets(conn: Conn, client_number: str) -> None:
    """Until the transaction ends, the client's other new tickets wait here: the duplicate guard
    then sees the ticket the client's previous request committed. (`new_ticket_facts` must come
    in a statement after this one: a statement sees what was committed before it started.)"""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tickets:' || $1))", client_number)


async def new_ticket_facts(
    conn: Conn, client_number: str, service_id: int, category_id: int
) -> Record:
    """`service_name` (null when the service is not the client's), `category_name` (null when
    there is no such category, or it is disabled) and `open_ticket`, the client's oldest ticket
    about this service and category that is not closed (null when none)."""
    return await conn.fetchrow(
        """
        SELECT
            (SELECT s.name FROM client_services s
             WHERE s.service_id = $2 AND s.client_number = $1) AS service_name,
            (SELECT c.name FROM categories c WHERE c.id = $3 AND NOT c.disabled)
                AS category_name,
            (SELECT t.number FROM tickets t
             WHERE t.client_number = $1 AND t.service_id = $2 AND t.category_id = $3
               AND t.status <> 'closed'
             ORDER BY t.number LIMIT 1) AS open_ticket
        """,
        client_number,
        service_id,
        category_id,
    )


async def insert_ticket(
    conn: Conn,
    *,
    client_number: str,
    service_id: int,
    service_name: str,
    category_id: int,
    subject: str,
    status: str,
    waiting: bool,
    excerpt: str,
    author_sub: str,
    author_name: str,
    body: str,
    channel: str,
    summary: str,
) -> Record:
    """A ticket and its first message (the client's): the ticket's `number`, `created_at` and
    `updated_at`, the message's `message_id` and `message_created_at`."""
    return await conn.fetchrow(
        """
        WITH t AS (
            INSERT INTO tickets (client_number, service_id, service_name, category_id, subject,
                                 status, waiting_since, excerpt, summary)
            VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END, $8, $13)
            RETURNING number, created_at, updated_at
        ), m AS (
            INSERT INTO messages (ticket_number, author_kind, author_sub, author_name, body,
                                  channel)
            SELECT number, 'client', $9, $10, $11, $12 FROM t
            RETURNING id, created_at
        )
        SELECT t.number, t.created_at, t.updated_at,
               m.id AS message_id, m.created_at AS message_created_at
        FROM t, m
        """,
        client_number,
        service_id,
        service_name,
        category_id,
        subject,
        status,
        waiting,
        excerpt,
        author_sub,
        author_name,
        body,
        channel,
        summary,
    )


async def get_ticket(conn: Conn, number: int, *, for_update: bool = False) -> Record | None:
    """The ticket's row with `category_name` and `assignee_name`; `for_update` locks it until
    the transaction ends."""
    query = f"""
        SELECT {_TICKET_COLUMNS}, c.name AS category_name, o.name AS assignee_name
        FROM tickets t JOIN categories c ON c.id = t.category_id {_ASSIGNEE}
        WHERE t.number = $1
    """
    return await conn.fetchrow(query + (" FOR UPDATE OF t" if for_update else ""), number)


def _set_state(
    number: str, *, status: str, waiting: str, excerpt: str, operator_reply: str = "false"
) -> str:
    """The UPDATE of a ticket's state, with the placeholders of the statement it goes into: a
    change of status is new activity; `waiting` starts (or keeps) the client's wait; a null
    excerpt keeps the ticket's; `operator_reply` restarts the auto-close count."""
    return f"""
        UPDATE tickets SET
            status = {status},
            updated_at = now(),
            waiting_since = CASE WHEN {waiting} THEN coalesce(waiting_since, now()) END,
            excerpt = coalesce({excerpt}, excerpt),
            last_operator_reply_at = CASE WHEN {operator_reply} THEN now()
                                          ELSE last_operator_reply_at END
        WHERE number = {number}
    """


async def set_ticket_state(
    conn: Conn, number: int, *, status: str, waiting: bool, excerpt: str | None
) -> None:
    await conn.execute(
        _set_state("$1", status="$2", waiting="$3", excerpt="$4"), number, status, waiting, excerpt
    )


# One statement: the message and the ticket's new state ($5 is the author's kind).
_MESSAGE_STATE = _set_state(
    "$1", status="$2", waiting="$3", excerpt="$4", operator_reply="$5 = 'operator'"
)
_ADD_MESSAGE = f"""
WITH t AS ({_MESSAGE_STATE})
INSERT INTO messages (ticket_number, author_kind, author_sub, author_name, body, channel)
VALUES ($1, $5, $6, $7, $8, $9)
RETURNING id, created_at
"""


async def add_message(
    conn: Conn,
    *,
    ticket_number: int,
    author_kind: str,
    author_sub: str,
    author_name: str,
    body: str,
    channel: str,
    status: str,
    waiting: bool,
    excerpt: str,
) -> Record:
    """A message, and the ticket's new state as `set_ticket_state` sets it (the message's
    `excerpt` becomes the ticket's): the message's `id` and `created_at`."""
    return await conn.fetchrow(
        _ADD_MESSAGE,
        ticket_number,
        status,
        waiting,
        excerpt,
        author_kind,
        author_sub,
        author_name,
        body,
        channel,
    )


async def ticket_messages(conn: Conn, number: int) -> list[Record]:
    return await conn.fetch(
        """
        SELECT id, author_kind, author_name, body, created_at FROM messages
        WHERE ticket_number = $1 ORDER BY id
        """,
        number,
    )


async def list_tickets(
    conn: Conn,
    *,
    limit: int,
    client_number: str | None = None,
    statuses: Sequence[str] | None = None,
    search: str | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
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
    if assignee_id is not None:
        where.append(f"t.assignee_id = {param(assignee_id)}")
    if unassigned:
        where.append("t.assignee_id IS NULL")
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
        SELECT {_TICKET_COLUMNS}, c.name AS category_name, o.name AS assignee_name
        FROM tickets t JOIN categories c ON c.id = t.category_id {_ASSIGNEE}
        {"WHERE " + " AND ".join(where) if where else ""}
        ORDER BY {order}
        LIMIT {param(limit)}
    """
    return await conn.fetch(query, *args)


async def last_message_id(conn: Conn, number: int) -> int:
    """The id of the ticket's newest message (the collision guard's)."""
    return await conn.fetchval("SELECT max(id) FROM messages WHERE ticket_number = $1", number)


# --- internal notes ----------------------------------------------------------------------------


async def insert_note(
    conn: Conn, *, ticket_number: int, author_sub: str, author_name: str, body: str
) -> Record:
    """A note; the ticket's row is left as it was (a note is no activity the client sees)."""
    return await conn.fetchrow(
        """
        INSERT INTO notes (ticket_number, author_sub, author_name, body) VALUES ($1, $2, $3, $4)
        RETURNING id, created_at
        """,
        ticket_number,
        author_sub,
        author_name,
        body,
    )


async def add_closure(conn: Conn, number: int, closed_by: str, closed_by_name: str | None) -> None:
    await conn.execute(
        "INSERT INTO closures (ticket_number, closed_by, closed_by_name) VALUES ($1, $2, $3)",
        number,
        closed_by,
        closed_by_name,
    )


async def ticket_closures(conn: Conn, number: int) -> list[Record]:
    return await conn.fetch(
        """
        SELECT closed_by, closed_by_name, created_at FROM closures
        WHERE ticket_number = $1 ORDER BY id
        """,
        number,
    )


async def ticket_notes(conn: Conn, number: int) -> list[Record]:
    return await conn.fetch(
        """
        SELECT id, author_name, body, created_at FROM notes
        WHERE ticket_number = $1 ORDER BY id
        """,
        number,
    )


# --- assignment, and the projection of operators -----------------------------------------------


async def get_operator(conn: Conn, operator_id: int) -> Record | None:
    return await conn.fetchrow(
        "SELECT id, name, role, disabled FROM operators WHERE id = $1", operator_id
    )


async def apply_operator(
    conn: Conn, *, operator_id: int, name: str, role: str, disabled: bool, as_of: datetime
) -> bool:
    """The operator's state as of `as_of`; False (and nothing changed) when what is kept is as
    new or newer."""
    return bool(
        await conn.fetchval(
            """
            INSERT INTO operators (id, name, role, disabled, as_of) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,
                disabled = excluded.disabled, as_of = excluded.as_of
                WHERE operators.as_of < excluded.as_of
            RETURNING true
            """,
            operator_id,
            name,
            role,
            disabled,
            as_of,
        )
    )


async def add_operator_from_token(conn: Conn, *, operator_id: int, name: str, role: str) -> None:
    """The operator as their own token shows them, unless tickets knows them already; as of
    -infinity, so that any event of auth's replaces it."""
    await conn.execute(
        """
        INSERT INTO operators (id, name, role, disabled, as_of)
        VALUES ($1, $2, $3, false, '-infinity') ON CONFLICT (id) DO NOTHING
        """,
        operator_id,
        name,
        role,
    )


async def set_assignee(conn: Conn, number: int, assignee_id: int | None) -> None:
    """Not new activity: `updated_at` (the client's order of their tickets) stays."""
    await conn.execute("UPDATE tickets SET assignee_id = $2 WHERE number = $1", number, assignee_id)


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


# --- category management and canned replies (SPEC 9.2) -----------------------------------------


async def update_category(
    conn: Conn, category_id: int, *, name: str | None, disabled: bool | None
) -> Record | None:
    """The category's new `id`, `name` and `disabled` (a None keeps the field); None when there
    is no such category. A name another category has (any case) raises UniqueViolationError."""
    return await conn.fetchrow(
        """
        UPDATE categories SET name = coalesce($2, name), disabled = coalesce($3, disabled)
        WHERE id = $1
        RETURNING id, name, disabled
        """,
        category_id,
        name,
        disabled,
    )


async def list_canned_replies(conn: Conn) -> list[Record]:
    return await conn.fetch("SELECT id, title, body FROM canned_replies ORDER BY lower(title), id")


async def insert_canned_reply(conn: Conn, *, title: str, body: str) -> Record | None:
    """None when a canned reply of that title (any case) exists."""
    return await conn.fetchrow(
        """
        INSERT INTO canned_replies (title, body) VALUES ($1, $2)
        ON CONFLICT DO NOTHING
        RETURNING id, title, body
        """,
        title,
        body,
    )


async def update_canned_reply(
    conn: Conn, reply_id: int, *, title: str | None, body: str | None
) -> Record | None:
    """The reply as changed (a None keeps the field); None when there is no such reply. A title
    another reply has (any case) raises UniqueViolationError."""
    return await conn.fetchrow(
        """
        UPDATE canned_replies
        SET title = coalesce($2, title), body = coalesce($3, body), updated_at = now()
        WHERE id = $1
        RETURNING id, title, body
        """,
        reply_id,
        title,
        body,
    )


async def delete_canned_reply(conn: Conn, reply_id: int) -> bool:
    """False when there was no such reply."""
    return (
        await conn.fetchval("DELETE FROM canned_replies WHERE id = $1 RETURNING true", reply_id)
        is not None
    )


# --- auto-close (SPEC 9.2) ---------------------------------------------------------------------


async def lock_auto_close_candidates(
    conn: Conn, *, older_than_seconds: float, limit: int
) -> list[Record]:
    """Up to `limit` answered tickets whose last operator reply is at least `older_than_seconds`
    old, locked until the transaction ends; tickets another transaction holds (another instance
    closing them, a client replying) are skipped. Each row has the transaction's `now`."""
    return await conn.fetch(
        """
        SELECT t.number, t.client_number, t.subject, t.summary, t.status,
               t.last_operator_reply_at, now() AS now
        FROM tickets t
        WHERE t.status = 'answered'
          AND t.last_operator_reply_at <= now() - make_interval(secs => $1)
        ORDER BY t.last_operator_reply_at, t.number
        LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,
        older_than_seconds,
        limit,
    )


# --- attachments -------------------------------------------------------------------------------


async def insert_upload(conn: Conn, attachment_id: uuid.UUID, owner_sub: str, name: str) -> None:
    """A file being received (no size nor type yet: never attachable until complete)."""
    await conn.execute(
        "INSERT INTO attachments (id, owner_sub, name) VALUES ($1, $2, $3)",
        attachment_id,
        owner_sub,
        name,
    )


async def insert_chunk(conn: Conn, attachment_id: uuid.UUID, seq: int, data: bytes) -> None:
    await conn.execute(
        "INSERT INTO attachment_chunks (attachment_id, seq, data) VALUES ($1, $2, $3)",
        attachment_id,
        seq,
        data,
    )


async def complete_upload(
    conn: Conn, attachment_id: uuid.UUID, size: int, content_type: str
) -> bool:
    """False when the file is gone (purged while it was received)."""
    result = await conn.execute(
        "UPDATE attachments SET size = $2, content_type = $3 WHERE id = $1",
        attachment_id,
        size,
        content_type,
    )
    return result != "UPDATE 0"


async def delete_unused_upload(conn: Conn, attachment_id: uuid.UUID) -> None:
    await conn.execute(
        "DELETE FROM attachments WHERE id = $1 AND message_id IS NULL", attachment_id
    )


async def lock_uploads(conn: Conn, ids: Sequence[uuid.UUID]) -> list[Record]:
    """The files `ids` (those that exist), locked until the transaction ends, in a fixed order
    so that two writes naming the same files cannot deadlock."""
    return await conn.fetch(
        """
        SELECT id, owner_sub, name, size, content_type, message_id FROM attachments
        WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE
        """,
        list(ids),
    )


async def attach(
    conn: Conn, ids: Sequence[uuid.UUID], *, message_id: int, ticket_number: int
) -> None:
    """The files `ids` become the message's, in the order given (no statement for none: most
    messages have none)."""
    if not ids:
        return
    await conn.execute(
        """
        UPDATE attachments
        SET message_id = $2, ticket_number = $3, position = array_position($1::uuid[], id)
        WHERE id = ANY($1::uuid[])
        """,
        list(ids),
        message_id,
        ticket_number,
    )


async def ticket_attachments(conn: Conn, number: int) -> list[Record]:
    return await conn.fetch(
        """
        SELECT message_id, id, name, size, content_type FROM attachments
        WHERE ticket_number = $1 ORDER BY message_id, position
        """,
        number,
    )


async def ticket_attachment(conn: Conn, number: int, attachment_id: uuid.UUID) -> Record | None:
    """A file of one of the ticket's messages (None for another ticket's, or an unused upload)."""
    return await conn.fetchrow(
        """
        SELECT id, name, size, content_type FROM attachments
        WHERE id = $2 AND ticket_number = $1
        """,
        number,
        attachment_id,
    )


async def attachment_chunk(conn: Conn, attachment_id: uuid.UUID, seq: int) -> bytes | None:
    return await conn.fetchval(
        "SELECT data FROM attachment_chunks WHERE attachment_id = $1 AND seq = $2",
        attachment_id,
        seq,
    )


async def purge_unused_uploads(conn: Conn, older_than_seconds: float, limit: int) -> int:
    """Delete at most `limit` files no message took, older than `older_than_seconds` (with their
    chunks). Rows another transaction holds (a write attaching them, another instance's purge)
    are skipped, not waited for."""
    result = await conn.execute(
        """
        DELETE FROM attachments WHERE id IN (
            SELECT id FROM attachments
            WHERE message_id IS NULL AND created_at < now() - make_interval(secs => $1)
            ORDER BY created_at LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        """,
        older_than_seconds,
        limit,
    )
    return int(result.split()[-1])
