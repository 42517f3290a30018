"""Canned replies (SPEC 9.2): texts admins keep for operators to insert into a reply. They are
only offered: a reply made from one is an ordinary message, so changing or deleting a canned
reply changes no ticket, and no event is needed."""

import asyncpg

from services.tickets import models, store
from shared.db import acquire
from shared.errors import Conflict, NotFound
from shared.unit_of_work import unit_of_work

NOT_FOUND = "There is no canned reply with this id."
TITLE_TAKEN = "A canned reply with this title already exists."


async def list_replies(pool: asyncpg.Pool) -> list[models.CannedReply]:
    """Every canned reply, by title."""
    async with acquire(pool) as conn:
        return [models.CannedReply(**dict(r)) for r in await store.list_canned_replies(conn)]


async def add_reply(pool: asyncpg.Pool, new: models.CannedReplyIn) -> models.CannedReply:
    """409 when the title (in any case) is taken."""
    async with unit_of_work(pool) as work:
        row = await store.insert_canned_reply(work.conn, title=new.title, body=new.body)
    if row is None:
        raise Conflict(TITLE_TAKEN)
    return models.CannedReply(**dict(row))


async def change_reply(
    pool: asyncpg.Pool, reply_id: int, change: models.CannedReplyPatch
) -> models.CannedReply:
    """404 for an unknown id; 409 when the new title (in any case) is another reply's."""
    try:
        async with unit_of_work(pool) as work:
            row = await store.update_canned_reply(
                work.conn, reply_id, title=change.title, body=change.body
            )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(TITLE_TAKEN) from exc
    if row is None:
        raise NotFound(NOT_FOUND)
    return models.CannedReply(**dict(row))


async def remove_reply(pool: asyncpg.Pool, reply_id: int) -> None:
    async with unit_of_work(pool) as work:
        deleted = await store.delete_canned_reply(work.conn, reply_id)
    if not deleted:
        raise NotFound(NOT_FOUND)
