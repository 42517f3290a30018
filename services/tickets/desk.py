"""What clients and operators do with tickets: each operation is one transaction that changes
rows and stores its event in the outbox. The rules themselves live in `lifecycle`."""

from datetime import datetime

import asyncpg

from services.tickets import lifecycle, models, store
from services.tickets.idempotency import Claim, once
from shared import events
from shared.auth import Principal
from shared.db import acquire, transaction
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.outbox import add_event, event_values
from shared.pagination import decode_cursor, encode_cursor

NOT_FOUND = "There is no ticket with this number."


def _aggregate(number: int) -> str:
    return f"ticket:{number}"


def _summary(row: asyncpg.Record) -> models.TicketSummary:
    return models.TicketSummary(
        number=row["number"],
        client_number=row["client_number"],
        service=models.ServiceRef(id=row["service_id"], name=row["service_name"]),
        category=models.Category(id=row["category_id"], name=row["category_name"]),
        subject=row["subject"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        excerpt=row["excerpt"],
    )


async def _ticket(conn: asyncpg.Connection, number: int) -> models.Ticket:
    row = await store.get_ticket(conn, number)
    if row is None:
        raise NotFound(NOT_FOUND)
    messages = [
        models.Message(
            id=m["id"],
            author=models.Author(kind=m["author_kind"], name=m["author_name"]),
            body=m["body"],
            created_at=m["created_at"],
        )
        for m in await store.ticket_messages(conn, number)
    ]
    summary = _summary(row).model_dump(exclude={"excerpt"})
    return models.Ticket(**summary, messages=messages)


async def _visible_ticket(
    conn: asyncpg.Connection,
    principal: Principal,
    number: int,
    *,
    for_update: bool = False,
    draw_message_id: bool = False,
) -> asyncpg.Record:
    """The ticket if the caller may see it; another client's ticket is 404, never 403."""
    row = await store.get_ticket(
        conn, number, for_update=for_update, draw_message_id=draw_message_id
    )
    if row is None or (not principal.is_staff and row["client_number"] != principal.client_number):
        raise NotFound(NOT_FOUND)
    return row


# --- categories --------------------------------------------------------------------------------


async def categories(pool: asyncpg.Pool) -> list[models.Category]:
    async with acquire(pool) as conn:
        return [models.Category(**dict(r)) for r in await store.list_categories(conn)]


async def add_category(pool: asyncpg.Pool, name: str) -> models.Category:
    async with transaction(pool) as conn:
        row = await store.insert_category(conn, name)
    if row is None:
        raise Conflict("A category with this name already exists.")
    return models.Category(**dict(row))


# --- tickets -----------------------------------------------------------------------------------


async def open_ticket(
    pool: asyncpg.Pool,
    principal: Principal,
    new: models.TicketCreate,
    channel: str,
    claim: Claim | None,
) -> tuple[models.Ticket, bool]:
    """422 for a service that is not the client's or an unknown category; 409 with
    `open_ticket` when a ticket for the same service and category is not closed yet. True when
    the answer is a replay of `claim`'s first request."""
    return await once(
        pool,
        claim,
        models.Ticket,
        lambda conn: _open_ticket(conn, principal, new, channel),
        atomic=True,
    )


async def _open_ticket(
    conn: asyncpg.Connection, principal: Principal, new: models.TicketCreate, channel: str
) -> models.Ticket:
    client_number = principal.client_number
    assert client_number is not None
    # The number, the subject (the category's name) and the service's name are the database's
    # to fill in (store.create_ticket); the rest of the event is the model's.
    envelope = events.Envelope.wrap(
        events.TicketCreated(
            number=0,
            client_number=client_number,
            subject="",
            service=events.ServiceRef(id=new.service_id, name=""),
            body=new.body,
        )
    )
    row = await store.create_ticket(
        conn,
        client_number=client_number,
        service_id=new.service_id,
        category_id=new.category_id,
        excerpt=lifecycle.excerpt(new.body),
        author_sub=principal.sub,
        author_name=principal.name,
        body=new.body,
        channel=channel,
        refuse_duplicate=not new.allow_duplicate,
        event=envelope,
    )
    if not row["service_found"]:
        raise _invalid("service_id", "This service is not one of yours.")
    if not row["category_found"]:
        raise _invalid("category_id", "There is no such category.")
    if row["duplicate"] is not None:
        raise Conflict(
            f"Ticket #{row['duplicate']} about this service and category is still open; "
            "add to it instead, or send allow_duplicate to open another.",
            open_ticket=row["duplicate"],
        )
    # What was just inserted, as `_ticket` would read it back (two round trips fewer).
    summary = _summary({**dict(row), "category_name": row["subject"]}).model_dump(
        exclude={"excerpt"}
    )
    first = models.Message(
        id=row["message_id"],
        author=models.Author(kind="client", name=principal.name),
        body=new.body,
        created_at=row["message_created_at"],
    )
    return models.Ticket(**summary, messages=[first])


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [{"field": field, "message": message}])


async def get_ticket(pool: asyncpg.Pool, principal: Principal, number: int) -> models.Ticket:
    async with acquire(pool) as conn:
        await _visible_ticket(conn, principal, number)
        return await _ticket(conn, number)


async def _add_message(
    conn: asyncpg.Connection,
    principal: Principal,
    ticket: asyncpg.Record,
    body: str,
    channel: str,
    status: lifecycle.Status,
    event: events.EventData,
) -> datetime:
    """The message (its id drawn with `ticket`), the ticket's new status and excerpt (new
    activity) and `event`; the message's `created_at`."""
    _, values = event_values(event, aggregate=_aggregate(ticket["number"]))
    return await store.add_message(
        conn,
        message_id=ticket["message_id"],
        ticket_number=ticket["number"],
        author_kind=principal.kind,
        author_sub=principal.sub,
        author_name=principal.name,
        body=body,
        channel=channel,
        status=status,
        waiting=lifecycle.is_waiting(status),
        excerpt=lifecycle.excerpt(body),
        event=values,
    )


async def reply(
    pool: asyncpg.Pool,
    principal: Principal,
    number: int,
    body: str,
    channel: str,
    claim: Claim | None,
) -> tuple[models.Message, bool]:
    """The new message; True when it is a replay of `claim`'s first request."""
    return await once(
        pool,
        claim,
        models.Message,
        lambda conn: _reply(conn, principal, number, body, channel),
        atomic=True,
    )


async def _reply(
    conn: asyncpg.Connection, principal: Principal, number: int, body: str, channel: str
) -> models.Message:
    # The ticket's client, its subject and the message's id are the database's to fill in
    # (store.add_reply); the rest of the event is the model's.
    envelope = events.Envelope.wrap(
        events.TicketReplied(
            number=number,
            client_number="",
            subject="",
            message_id=0,
            author_kind=principal.kind,
            author_name=principal.name,
            body=body,
            channel=channel,
        )
    )
    row = await store.add_reply(
        conn,
        number=number,
        aggregate=_aggregate(number),
        client_number=None if principal.is_staff else principal.client_number,
        author_kind=principal.kind,
        author_sub=principal.sub,
        author_name=principal.name,
        body=body,
        channel=channel,
        excerpt=lifecycle.excerpt(body),
        status_after=lifecycle.STATUS_AFTER_REPLY[principal.kind],
        waiting=lifecycle.WAITING,
        event=envelope,
    )
    if not row["found"]:
        raise NotFound(NOT_FOUND)
    if row["message_id"] is None:
        # Refused by the lifecycle: its own error, with its reason.
        lifecycle.status_after_reply(row["status_before"], principal.kind)
        raise AssertionError(f"a reply to a {row['status_before']} ticket was refused")
    return models.Message(
        id=row["message_id"],
        author=models.Author(kind=principal.kind, name=principal.name),
        body=body,
        created_at=row["message_created_at"],
    )


async def reopen(
    pool: asyncpg.Pool,
    principal: Principal,
    number: int,
    body: str,
    channel: str,
    claim: Claim | None,
) -> tuple[models.Ticket, bool]:
    """The reopened ticket; True when it is a replay of `claim`'s first request."""
    return await once(
        pool, claim, models.Ticket, lambda conn: _reopen(conn, principal, number, body, channel)
    )


async def _reopen(
    conn: asyncpg.Connection, principal: Principal, number: int, body: str, channel: str
) -> models.Ticket:
    row = await _visible_ticket(conn, principal, number, for_update=True, draw_message_id=True)
    status = lifecycle.status_after_reopen(row["status"], principal.kind)
    event = events.TicketReopened(number=number, client_number=row["client_number"], body=body)
    await _add_message(conn, principal, row, body, channel, status, event)
    return await _ticket(conn, number)


async def close(pool: asyncpg.Pool, principal: Principal, number: int) -> models.Ticket:
    async with transaction(pool) as conn:
        row = await _visible_ticket(conn, principal, number, for_update=True)
        status = lifecycle.status_after_close(row["status"])
        await store.set_ticket_state(conn, number, status=status, waiting=False, excerpt=None)
        await add_event(
            conn,
            events.TicketClosed(
                number=number, client_number=row["client_number"], closed_by=principal.kind
            ),
            aggregate=_aggregate(number),
        )
        return await _ticket(conn, number)


async def list_tickets(
    pool: asyncpg.Pool, principal: Principal, query: models.TicketQuery
) -> models.TicketPage:
    """Clients see their own tickets only; operators may filter by client and search."""
    after = decode_cursor(query.cursor, (datetime, int)) if query.cursor else None
    client_number = principal.client_number if not principal.is_staff else query.client_number
    async with acquire(pool) as conn:
        rows = await store.list_tickets(
            conn,
            limit=query.limit + 1,
            client_number=client_number,
            statuses=query.statuses,
            search=query.q,
            sort=query.sort,
            after=after,
        )
    items = [_summary(r) for r in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        key = last["waiting_since"] if query.sort == "waiting" else last["updated_at"]
        next_cursor = encode_cursor(key, last["number"])
    return models.TicketPage(items=items, next_cursor=next_cursor)
