"""auth's admin rules (SPEC 9.1): finding and changing clients and operators, disabling them,
and never leaving the suite without an enabled admin."""

import asyncpg

from services.auth import models, store
from services.auth.accounts import client_out, operator_changed
from shared import events
from shared.db import acquire
from shared.errors import Conflict, NotFound
from shared.pagination import decode_cursor, encode_cursor
from shared.unit_of_work import unit_of_work


async def list_clients(pool: asyncpg.Pool, query: models.ClientQuery) -> models.ClientPage:
    (after,) = decode_cursor(query.cursor, (int,)) if query.cursor else (None,)
    async with acquire(pool) as conn:
        rows = await store.search_clients(conn, q=query.q, after=after, limit=query.limit + 1)
        page = rows[: query.limit]
        services: dict[int, list[models.ServiceOut]] = {r["client_number"]: [] for r in page}
        for s in await store.services_of_clients(conn, list(services)):
            services[s["client_number"]].append(models.ServiceOut(id=s["id"], name=s["name"]))
    items = [
        models.ClientOut(
            client_number=str(r["client_number"]),
            name=r["name"],
            email=r["email"],
            language=r["language"],
            services=services[r["client_number"]],
            disabled=r["disabled"],
            created_at=r["created_at"],
        )
        for r in page
    ]
    more = len(rows) > query.limit
    return models.ClientPage(
        items=items, next_cursor=encode_cursor(page[-1]["client_number"]) if more else None
    )


async def update_client(
    pool: asyncpg.Pool, number: int, change: models.ClientPatch
) -> models.ClientOut:
    """An admin's change. Disabling ends every login of the client at once (its access
    tokens run out within their short life); what the notifier and tickets keep of the client
    follows through `auth.client.updated`."""
    async with unit_of_work(pool) as work:
        conn = work.conn
        current = await store.get_client(conn, number, for_update=True)
        if current is None:
            raise NotFound("There is no client with this number.")
        wanted = change.model_dump(exclude_none=True)
        changed = {k: v for k, v in wanted.items() if v != current[k]}
        if changed:
            await store.update_client(
                conn,
                number,
                name=changed.get("name"),
                email=changed.get("email"),
                language=changed.get("language"),
                disabled=changed.get("disabled"),
            )
        if changed.get("disabled"):
            await store.revoke_subject(conn, f"client:{number}")
        if changed.get("disabled") or "email" in changed:
            # A link the client asked for before must not undo the admin's change (nor, for a
            # disabled account, change anything at all).
            await store.expire_email_changes(conn, number)
            await store.expire_password_tokens(conn, number)
        contact = {k: v for k, v in changed.items() if k in ("name", "email", "language")}
        if contact:
            work.add_event(
                events.ClientUpdated(client_number=str(number), **contact),
                aggregate=f"client:{number}",
            )
        return await client_out(conn, number)


async def list_operators(pool: asyncpg.Pool, query: models.PageQuery) -> models.OperatorPage:
    (after,) = decode_cursor(query.cursor, (int,)) if query.cursor else (None,)
    async with acquire(pool) as conn:
        rows = await store.list_operators(conn, after=after, limit=query.limit + 1)
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return models.OperatorPage(
        items=[models.OperatorOut(**dict(r)) for r in page],
        next_cursor=encode_cursor(page[-1]["id"]) if more else None,
    )


def leaves_an_admin(
    *, role: str, disabled: bool, change: models.OperatorPatch, admins: int
) -> bool:
    """Whether, after `change` to an operator of this `role` and state, an enabled admin is
    left, `admins` being the enabled admins now."""
    was_admin = role == "admin" and not disabled
    stays_admin = (change.role or role) == "admin" and not (
        change.disabled if change.disabled is not None else disabled
    )
    return admins - was_admin + stays_admin > 0


async def update_operator(
    pool: asyncpg.Pool, operator_id: int, change: models.OperatorPatch
) -> models.OperatorOut:
    """An admin's change; 409 when it would leave no enabled admin (nobody could then manage
    the accounts). Disabling ends every login of the operator at once."""
    async with unit_of_work(pool) as work:
        conn = work.conn
        await store.lock_admins(conn)
        current = await store.get_operator(conn, operator_id, for_update=True)
        if current is None:
            raise NotFound("There is no operator with this id.")
        admins = await store.active_admins(conn)
        if not leaves_an_admin(
            role=current["role"], disabled=current["disabled"], change=change, admins=admins
        ):
            raise Conflict("This is the last admin: make another admin first.")
        row = await store.update_operator(
            conn, operator_id, name=change.name, role=change.role, disabled=change.disabled
        )
        if change.disabled:
            await store.revoke_subject(conn, f"operator:{operator_id}")
        # The whole state, even when nothing changed: a PATCH also re-announces an operator
        # whose earlier event tickets missed.
        work.add_event(operator_changed(row), aggregate=f"operator:{operator_id}")
    return models.OperatorOut(**dict(row))
