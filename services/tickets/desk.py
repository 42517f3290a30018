"""What clients and operators do with tickets. Each write has one shape, top to bottom: a unit of
work (`shared.unit_of_work`: one transaction), the row locked, the rule of `lifecycle` applied,
the rows written (`store`), and the complete event added to the outbox."""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from services.tickets import attachments, lifecycle, models, store
from services.tickets.idempotency import Claim, once
from shared import events
from shared.auth import Principal
from shared.db import acquire
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.pagination import decode_cursor, encode_cursor
from shared.unit_of_work import UnitOfWork, unit_of_work

NOT_FOUND = "There is no ticket with this number."
CATEGORY_EXISTS = "A category with this name already exists."


def _aggregate(number: int) -> str:
    return f"ticket:{number}"


def _sees_operator_data(principal: Principal) -> bool:
    """The one visibility rule (DESIGN, SPEC 9.2): a ticket's assignee and internal notes are
    operators' own; a client's answers never carry them (the fields are absent, not empty)."""
    return principal.is_staff


def _assignee(row: asyncpg.Record) -> models.Assignee | None:
    if row["assignee_id"] is None:
        return None
    return models.Assignee(id=row["assignee_id"], name=row["assignee_name"])


def _list_item(row: asyncpg.Record, principal: Principal) -> models.TicketSummary:
    item = _summary(row)
    if not _sees_operator_data(principal):
        return item
    return models.OperatorTicketSummary(
        **dict(item), assignee=_assignee(row), waiting_since=row["waiting_since"]
    )


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
        summary=row["summary"],
        excerpt=row["excerpt"],
    )


async def _ticket(conn: asyncpg.Connection, number: int, principal: Principal) -> models.Ticket:
    """The ticket as `principal` may see it (`_sees_operator_data`)."""
    row = await store.get_ticket(conn, number)
    if row is None:
        raise NotFound(NOT_FOUND)
    files: dict[int, list[models.Attachment]] = defaultdict(list)
    for f in await store.ticket_attachments(conn, number):
        files[f["message_id"]].append(_attachment(f))
    messages = [
        models.Message(
            id=m["id"],
            author=models.Author(kind=m["author_kind"], name=m["author_name"]),
            body=m["body"],
            created_at=m["created_at"],
            attachments=files[m["id"]],
        )
        for m in await store.ticket_messages(conn, number)
    ]
    summary = _summary(row).model_dump(exclude={"excerpt"})
    summary["closures"] = [
        models.Closure(by=c["closed_by"], name=c["closed_by_name"], at=c["created_at"])
        for c in await store.ticket_closures(conn, number)
    ]
    if not _sees_operator_data(principal):
        return models.Ticket(**summary, messages=messages)
    notes = [
        models.Note(
            id=n["id"],
            author=models.Author(kind="operator", name=n["author_name"]),
            body=n["body"],
            created_at=n["created_at"],
        )
        for n in await store.ticket_notes(conn, number)
    ]
    return models.OperatorTicket(**summary, messages=messages, assignee=_assignee(row), notes=notes)


async def _visible_ticket(
    conn: asyncpg.Connection, principal: Principal, number: int, *, for_update: bool = False
) -> asyncpg.Record:
    """The ticket if the caller may see it; another client's ticket is 404, never 403."""
    row = await store.get_ticket(conn, number, for_update=for_update)
    if row is None or (not principal.is_staff and row["client_number"] != principal.client_number):
        raise NotFound(NOT_FOUND)
    return row


def _attachment(row: asyncpg.Record) -> models.Attachment:
    return models.Attachment(
        id=row["id"], name=row["name"], size=row["size"], content_type=row["content_type"]
    )


async def _uploads(
    conn: asyncpg.Connection, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[models.Attachment]:
    """The caller's unused uploads `ids`, locked until the transaction ends; 422 otherwise."""
    if not ids:
        return []
    rows = await store.lock_uploads(conn, ids)
    return [_attachment(r) for r in attachments.usable(rows, ids, principal.sub)]


def _refs(files: Sequence[models.Attachment]) -> list[events.AttachmentRef]:
    return [events.AttachmentRef(**f.model_dump()) for f in files]


# --- categories --------------------------------------------------------------------------------


async def categories(
    pool: asyncpg.Pool, *, include_disabled: bool = False
) -> list[models.Category] | list[models.CategoryState]:
    """The categories offered for new tickets as `{id, name}`; with `include_disabled`, every
    category, each saying whether it is disabled."""
    async with acquire(pool) as conn:
        rows = await store.list_categories(conn, include_disabled=include_disabled)
    if include_disabled:
        return [models.CategoryState(**dict(r)) for r in rows]
    return [models.Category(id=r["id"], name=r["name"]) for r in rows]


async def add_category(pool: asyncpg.Pool, name: str) -> models.Category:
    async with unit_of_work(pool) as work:
        row = await store.insert_category(work.conn, name)
    if row is None:
        raise Conflict(CATEGORY_EXISTS)
    return models.Category(**dict(row))


async def change_category(
    pool: asyncpg.Pool, category_id: int, change: models.CategoryPatch
) -> models.CategoryState:
    """Rename or disable (enable) a category. Its tickets keep the subject they were opened
    with: the subject is what the client and the emails called the ticket."""
    try:
        async with unit_of_work(pool) as work:
            row = await store.update_category(
                work.conn, category_id, name=change.name, disabled=change.disabled
            )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(CATEGORY_EXISTS) from exc
    if row is None:
        raise NotFound("There is no such category.")
    return models.CategoryState(**dict(row))


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
        pool, claim, models.Ticket, lambda work: _open_ticket(work, principal, new, channel)
    )


async def _open_ticket(
    work: UnitOfWork, principal: Principal, new: models.TicketCreate, channel: str
) -> models.Ticket:
    client_number = principal.client_number
    assert client_number is not None
    await store.lock_client_tickets(work.conn, client_number)
    facts = await store.new_ticket_facts(work.conn, client_number, new.service_id, new.category_id)
    if facts["service_name"] is None:
        raise _invalid("service_id", "This service is not one of yours.")
    if facts["category_name"] is None:
        raise _invalid("category_id", "There is no such category, or it is no longer offered.")
    status = lifecycle.status_of_new_ticket(
        facts["open_ticket"], allow_duplicate=new.allow_duplicate
    )
    summary = lifecycle.summary(new.body)
    files = await _uploads(work.conn, principal, new.attachment_ids)
    service = models.ServiceRef(id=new.service_id, name=facts["service_name"])
    category = models.Category(id=new.category_id, name=facts["category_name"])
    row = await store.insert_ticket(
        work.conn,
        client_number=client_number,
        service_id=service.id,
        service_name=service.name,
        category_id=category.id,
        subject=category.name,
        status=status,
        waiting=lifecycle.is_waiting(status),
        excerpt=lifecycle.excerpt(new.body),
        author_sub=principal.sub,
        author_name=principal.name,
        body=new.body,
        channel=channel,
        summary=summary,
    )
    await store.attach(
        work.conn, [f.id for f in files], message_id=row["message_id"], ticket_number=row["number"]
    )
    work.add_event(
        events.TicketCreated(
            number=row["number"],
            client_number=client_number,
            subject=category.name,
            service=events.ServiceRef(id=service.id, name=service.name),
            body=new.body,
            attachments=_refs(files),
        ),
        aggregate=_aggregate(row["number"]),
    )
    first = models.Message(
        id=row["message_id"],
        author=models.Author(kind="client", name=principal.name),
        body=new.body,
        created_at=row["message_created_at"],
        attachments=files,
    )
    return models.Ticket(
        number=row["number"],
        client_number=client_number,
        service=service,
        category=category,
        subject=category.name,
        status=status,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        summary=summary,
        messages=[first],
    )


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [{"field": field, "message": message}])


async def get_ticket(pool: asyncpg.Pool, principal: Principal, number: int) -> models.Ticket:
    async with acquire(pool) as conn:
        await _visible_ticket(conn, principal, number)
        return await _ticket(conn, number, principal)


async def attachment(
    pool: asyncpg.Pool, principal: Principal, number: int, attachment_id: uuid.UUID
) -> models.Attachment:
    """A file of one of the ticket's messages; 404 when the caller may not see the ticket, and
    for another ticket's file or an upload no message took."""
    async with acquire(pool) as conn:
        await _visible_ticket(conn, principal, number)
        row = await store.ticket_attachment(conn, number, attachment_id)
    if row is None:
        raise NotFound("This ticket has no such file.")
    return _attachment(row)


async def reply(
    pool: asyncpg.Pool,
    principal: Principal,
    number: int,
    new: models.MessageIn,
    channel: str,
    claim: Claim | None,
    *,
    if_last_message_id: int | None = None,
) -> tuple[models.Message, bool]:
    """The new message; True when it is a replay of `claim`'s first request. 409 with
    `last_message_id` when `if_last_message_id` is not the ticket's newest message."""
    return await once(
        pool,
        claim,
        models.Message,
        lambda work: _reply(work, principal, number, new, channel, if_last_message_id),
    )


async def _reply(
    work: UnitOfWork,
    principal: Principal,
    number: int,
    new: models.MessageIn,
    channel: str,
    seen: int | None = None,
) -> models.Message:
    body = new.body
    ticket = await _visible_ticket(work.conn, principal, number, for_update=True)
    status = lifecycle.status_after_reply(ticket["status"], principal.kind)
    await _guard_collision(work.conn, number, seen)
    files = await _uploads(work.conn, principal, new.attachment_ids)
    message = await _add_message(work.conn, principal, number, body, channel, status, files)
    work.add_event(
        events.TicketReplied(
            number=number,
            client_number=ticket["client_number"],
            subject=ticket["subject"],
            message_id=message.id,
            author_kind=principal.kind,
            author_name=principal.name,
            body=body,
            channel=channel,
            summary=ticket["summary"],
            attachments=_refs(files),
        ),
        aggregate=_aggregate(number),
    )
    return message


async def _guard_collision(conn: asyncpg.Connection, number: int, seen: int | None) -> None:
    """The collision guard (`lifecycle.check_last_message`), on the locked ticket."""
    if seen is not None:
        lifecycle.check_last_message(seen, await store.last_message_id(conn, number))


async def _add_message(
    conn: asyncpg.Connection,
    principal: Principal,
    number: int,
    body: str,
    channel: str,
    status: lifecycle.Status,
    files: Sequence[models.Attachment],
) -> models.Message:
    """The caller's message with its `files`, and the ticket's new status (new activity; the
    message is the ticket's new excerpt)."""
    row = await store.add_message(
        conn,
        ticket_number=number,
        author_kind=principal.kind,
        author_sub=principal.sub,
        author_name=principal.name,
        body=body,
        channel=channel,
        status=status,
        waiting=lifecycle.is_waiting(status),
        excerpt=lifecycle.excerpt(body),
    )
    await store.attach(conn, [f.id for f in files], message_id=row["id"], ticket_number=number)
    return models.Message(
        id=row["id"],
        author=models.Author(kind=principal.kind, name=principal.name),
        body=body,
        created_at=row["created_at"],
        attachments=list(files),
    )


async def reopen(
    pool: asyncpg.Pool,
    principal: Principal,
    number: int,
    new: models.MessageIn,
    channel: str,
    claim: Claim | None,
) -> tuple[models.Ticket, bool]:
    """The reopened ticket; True when it is a replay of `claim`'s first request."""
    return await once(
        pool, claim, models.Ticket, lambda work: _reopen(work, principal, number, new, channel)
    )


async def _reopen(
    work: UnitOfWork, principal: Principal, number: int, new: models.MessageIn, channel: str
) -> models.Ticket:
    ticket = await _visible_ticket(work.conn, principal, number, for_update=True)
    status = lifecycle.status_after_reopen(ticket["status"], principal.kind)
    files = await _uploads(work.conn, principal, new.attachment_ids)
    await _add_message(work.conn, principal, number, new.body, channel, status, files)
    work.add_event(
        events.TicketReopened(
            number=number,
            client_number=ticket["client_number"],
            body=new.body,
            attachments=_refs(files),
        ),
        aggregate=_aggregate(number),
    )
    return await _ticket(work.conn, number, principal)


async def close(
    pool: asyncpg.Pool, principal: Principal, number: int, *, if_last_message_id: int | None = None
) -> models.Ticket:
    """409 with `last_message_id` when `if_last_message_id` is not the newest message."""
    async with unit_of_work(pool) as work:
        ticket = await _visible_ticket(work.conn, principal, number, for_update=True)
        await _guard_collision(work.conn, number, if_last_message_id)
        name = principal.name if principal.kind == "operator" else None
        await close_locked(work, ticket, closed_by=principal.kind, name=name)
        return await _ticket(work.conn, number, principal)


async def close_locked(
    work: UnitOfWork, ticket: asyncpg.Record, *, closed_by: str, name: str | None
) -> None:
    """Close `ticket`, whose row `work` has locked: its state, the line the conversation shows,
    and the event (the operator's name goes to the client's notice)."""
    number = ticket["number"]
    status = lifecycle.status_after_close(ticket["status"])
    await store.set_ticket_state(
        work.conn, number, status=status, waiting=lifecycle.is_waiting(status), excerpt=None
    )
    await store.add_closure(work.conn, number, closed_by, name)
    work.add_event(
        events.TicketClosed(
            number=number,
            client_number=ticket["client_number"],
            closed_by=closed_by,
            subject=ticket["subject"],
            summary=ticket["summary"],
            closed_by_name=name,
        ),
        aggregate=_aggregate(number),
    )


async def list_tickets(
    pool: asyncpg.Pool, principal: Principal, query: models.TicketQuery
) -> models.TicketPage:
    """Clients see their own tickets only; operators may filter by client, by assignee (`me`,
    `none` or an operator's id) and search."""
    after = decode_cursor(query.cursor, (datetime, int)) if query.cursor else None
    client_number = principal.client_number if not principal.is_staff else query.client_number
    assignee = query.assignee if principal.is_staff else None
    if assignee == "me":
        assignee = principal.account_id
    async with acquire(pool) as conn:
        rows = await store.list_tickets(
            conn,
            limit=query.limit + 1,
            client_number=client_number,
            statuses=query.statuses,
            search=query.q,
            assignee_id=int(assignee) if assignee not in (None, "none") else None,
            unassigned=assignee == "none",
            sort=query.sort,
            after=after,
        )
    items = [_list_item(r, principal) for r in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        key = last["waiting_since"] if query.sort == "waiting" else last["updated_at"]
        next_cursor = encode_cursor(key, last["number"])
    return models.TicketPage(items=items, next_cursor=next_cursor)


# --- operators' work: internal notes and assignment (SPEC 9.2) ---------------------------------


async def add_note(pool: asyncpg.Pool, principal: Principal, number: int, body: str) -> models.Note:
    """An internal note (operators only): no status, activity or email follows from it, and
    its event carries no text."""
    async with unit_of_work(pool) as work:
        ticket = await _visible_ticket(work.conn, principal, number, for_update=True)
        row = await store.insert_note(
            work.conn,
            ticket_number=number,
            author_sub=principal.sub,
            author_name=principal.name,
            body=body,
        )
        work.add_event(
            events.TicketNoted(
                number=number,
                client_number=ticket["client_number"],
                note_id=row["id"],
                author_name=principal.name,
            ),
            aggregate=_aggregate(number),
        )
    return models.Note(
        id=row["id"],
        author=models.Author(kind="operator", name=principal.name),
        body=body,
        created_at=row["created_at"],
    )


async def assign(
    pool: asyncpg.Pool, principal: Principal, number: int, operator_id: int | None
) -> models.Ticket:
    """The ticket assigned to `operator_id` (None: to nobody); 422 for an operator tickets does
    not know or a disabled one. Operators are known from auth's `auth.operator.changed`; an
    operator assigning a ticket to themselves is also known from their own token (signed by
    auth), so that "Asignar a mí" works before their event has arrived."""
    async with unit_of_work(pool) as work:
        conn = work.conn
        ticket = await _visible_ticket(conn, principal, number, for_update=True)
        assignee = None
        if operator_id is not None:
            if principal.is_staff and operator_id == int(principal.account_id):
                await store.add_operator_from_token(
                    conn, operator_id=operator_id, name=principal.name, role=principal.role
                )
            operator = await store.get_operator(conn, operator_id)
            lifecycle.check_assignee(
                known=operator is not None, disabled=operator is not None and operator["disabled"]
            )
            assert operator is not None
            assignee = events.Assignee(id=operator["id"], name=operator["name"])
        if ticket["assignee_id"] != operator_id:
            await store.set_assignee(conn, number, operator_id)
            work.add_event(
                events.TicketAssigned(
                    number=number,
                    client_number=ticket["client_number"],
                    assignee=assignee,
                    assigned_by=principal.name,
                ),
                aggregate=_aggregate(number),
            )
        return await _ticket(conn, number, principal)
