"""Files' bytes in and out of PostgreSQL (SPEC 9.2): an upload stored as it arrives, a download
read as it is sent, and the purge of uploads no message took. Their rules are in `attachments`;
attaching a file to a message is part of that message's write (`desk`).

An upload is not one transaction: it lasts as long as the client takes to send the file, and a
transaction would hold one of the pool's few connections all that time, so that a handful of
slow clients could take the service down. Each piece is written on its own instead, on a
connection taken for that one statement: the file's row first, without a size (never attachable
while so), then its chunks, then its size and type. An upload that fails is deleted at once; one
whose process died is left unused, and the purge takes it a day later. A download likewise reads
one chunk at a time, each on a connection of its own, so a slow reader holds none.
"""

import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator

import asyncpg
import structlog
from aiohttp import web

from services.tickets import attachments, models, store
from shared.auth import Principal
from shared.db import DB_UNAVAILABLE_ERRORS, acquire
from shared.errors import NotFound, ServiceUnavailable
from shared.resources import POOL
from shared.uploads import UploadedFile

log = structlog.get_logger(__name__)
PURGE_BATCH = 500


async def upload(pool: asyncpg.Pool, principal: Principal, file: UploadedFile) -> models.Attachment:
    """Store `file` as an unused upload of the caller's (413 past the limit, 422 for a bad name)."""
    name = attachments.clean_name(file.filename)
    attachment_id = uuid.uuid4()
    async with acquire(pool) as conn:
        await store.insert_upload(conn, attachment_id, principal.sub, name)
    content_type = attachments.OCTET_STREAM
    stored = False
    try:
        seq = 0
        async for piece in file.pieces(attachments.CHUNK_BYTES):
            if seq == 0:
                content_type = attachments.served_type(piece)
            async with acquire(pool) as conn:
                await store.insert_chunk(conn, attachment_id, seq, piece)
            seq += 1
        async with acquire(pool) as conn:
            stored = await store.complete_upload(conn, attachment_id, file.size, content_type)
        if not stored:
            raise NotFound("The upload was deleted while it was received; send it again.")
    finally:
        if not stored:
            await _forget(pool, attachment_id)
    return models.Attachment(id=attachment_id, name=name, size=file.size, content_type=content_type)


async def _forget(pool: asyncpg.Pool, attachment_id: uuid.UUID) -> None:
    """Delete a failed upload; if the database is away, the purge will."""
    with contextlib.suppress(*DB_UNAVAILABLE_ERRORS, ServiceUnavailable):
        async with acquire(pool) as conn:
            await store.delete_unused_upload(conn, attachment_id)


async def chunks(pool: asyncpg.Pool, attachment_id: uuid.UUID) -> AsyncIterator[bytes]:
    """The file's bytes, one stored chunk at a time."""
    for seq in itertools.count():
        async with acquire(pool) as conn:
            data = await store.attachment_chunk(conn, attachment_id, seq)
        if data is None:
            return
        yield data


async def purge_unused(pool: asyncpg.Pool, *, older_than: float) -> int:
    """Delete the uploads no message took within `older_than` seconds; how many were."""
    total = 0
    while True:
        async with acquire(pool) as conn:
            purged = await store.purge_unused_uploads(conn, older_than, PURGE_BATCH)
        total += purged
        if purged < PURGE_BATCH:
            return total


async def purge(app: web.Application) -> None:
    """The uploads unused for a day (a `resources.periodic` chore, safe in several instances:
    each skips the rows another is deleting)."""
    purged = await purge_unused(app[POOL], older_than=attachments.UNUSED_KEEP_SECONDS)
    if purged:
        log.info("attachments.purged", count=purged)
