"""`Idempotency-Key` on the writes that add text (a new ticket, a reply, a reopening): a request
repeated with the same key, by the same caller, gets the first answer again and writes nothing.

A reply whose answer was lost (a timeout, a dropped connection, a form sent twice) can then be
sent again without the message appearing twice. The key is claimed in the write's own transaction
(services/tickets/store.py), so a failed request leaves no key behind and can be retried, and two
requests with the same key at once are done one after the other: the second gets the first's
answer. The same key with a different request is refused (422), as the IETF draft on the header
(draft-ietf-httpapi-idempotency-key-header) asks. Keys are kept 24 hours (then free again, and
purged). The channel header is not part of the request's identity: the response does not show it.
A reopening's response holds the whole ticket, and is stored so (reopenings are rare)."""

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import structlog
from aiohttp import web
from pydantic import BaseModel

from services.tickets import store
from shared.auth import Principal
from shared.db import acquire
from shared.errors import ValidationFailed
from shared.resources import POOL
from shared.unit_of_work import UnitOfWork, unit_of_work

log = structlog.get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEEP_SECONDS = 24 * 3600
PURGE_INTERVAL = 600.0
# Visible ASCII: a UUID, a random token, or whatever the client uses, up to 255 characters.
KEY_REGEX = r"[\x21-\x7e]{1,255}"
_KEY = re.compile(KEY_REGEX)
# The header as the OpenAPI document describes it (shared.openapi.Route.headers).
OPENAPI_HEADER = {
    HEADER: (
        "Optional. The same key with the same request, within 24 hours, gets the first answer "
        f"again (with `{REPLAYED_HEADER}: true`) and writes nothing; with another request, 422.",
        KEY_REGEX,
    )
}

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Claim:
    principal: str
    key: str
    fingerprint: str


def claim_of(
    request: web.Request, principal: Principal, operation: str, body: BaseModel
) -> Claim | None:
    """The request's claim, None without the header; 422 for a malformed key. `operation` names
    what the request does to what (`reply to 42`), so that spellings of one path (`/042/`) are
    the same request."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        message = "Idempotency-Key must be 1 to 255 visible ASCII characters."
        raise ValidationFailed(message, [{"field": HEADER, "message": message}])
    request_text = f"{operation}\n{body.model_dump_json()}"
    fingerprint = hashlib.sha256(request_text.encode()).hexdigest()
    return Claim(principal.sub, key, fingerprint)


async def once(
    pool: asyncpg.Pool,
    claim: Claim | None,
    model: type[M],
    write: Callable[[UnitOfWork], Awaitable[M]],
) -> tuple[M, bool]:
    """`write(work)` in a unit of work of its own, unless `claim`'s key was used before: then
    the first response. True when replayed."""
    async with unit_of_work(pool) as work:
        if claim is None:
            return await write(work), False
        stored = await store.claim_idempotency_key(
            work.conn, claim.principal, claim.key, claim.fingerprint, KEEP_SECONDS
        )
        if stored is not None:
            if stored["fingerprint"] != claim.fingerprint:
                message = "This Idempotency-Key was already used with a different request."
                raise ValidationFailed(message, [{"field": HEADER, "message": message}])
            return model.model_validate_json(stored["response"]), True
        result = await write(work)
        response = result.model_dump_json()
        await store.save_idempotent_response(work.conn, claim.principal, claim.key, response)
        return result, False


def replay_headers(replayed: bool) -> dict[str, str]:
    return {REPLAYED_HEADER: "true"} if replayed else {}


async def purge(app: web.Application) -> None:
    """Delete the keys older than KEEP_SECONDS (a `resources.periodic` chore)."""
    async with acquire(app[POOL]) as conn:
        purged = await store.purge_idempotency_keys(conn, KEEP_SECONDS)
    if purged:
        log.info("idempotency_keys.purged", count=purged)
