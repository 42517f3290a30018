"""The notifier's routes: its sealing key (public), the admin's dead letters, and the delivery
status of a ticket's emails (operators; an admin resends a dead one)."""

import uuid

from aiohttp import web

from services.notifier import models, store
from services.notifier.delivery import Delivery
from shared import sealing
from shared.auth import ADMIN, STAFF, Principal
from shared.http import json_response
from shared.openapi import KEY, Route
from shared.resources import POOL

DELIVERY = web.AppKey("delivery", Delivery)
SEALING_KEY = web.AppKey("sealing_key", str)
UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# More emails than this about one ticket would be a flood, not a conversation.
DELIVERIES_MAX = 1000
# What an operator is shown of the relay's answer: its code and text, not a whole traceback.
LAST_ERROR_MAX = 300


def _record(row: object) -> models.DeadLetter:
    return models.DeadLetter.model_validate(dict(row))  # type: ignore[call-overload]


async def list_dead_letters(
    request: web.Request, principal: Principal, query: models.DeadLetterQuery
) -> web.Response:
    async with request.app[POOL].acquire(timeout=3) as conn:
        rows = await store.list_dead_letters(
            conn,
            include_replayed=query.include_replayed,
            after_id=query.after_id,
            limit=query.limit,
        )
    return json_response(models.DeadLetterList([_record(r) for r in rows]))


async def replay_dead_letter(request: web.Request, principal: Principal) -> web.Response:
    row = await request.app[DELIVERY].replay(int(request.match_info["id"]))
    return json_response(_record(row), status=202)


def delivery_status(status: str, last_error: str | None) -> models.DeliveryStatus:
    """The four states of SPEC 9.3 from the internal ones: `pending` and `sending` are
    `retrying` once an attempt has failed, `queued` before."""
    if status in ("sent", "dead"):
        return status  # type: ignore[return-value]
    return "retrying" if last_error else "queued"


def _delivery(row: object) -> models.Delivery:
    values = dict(row)  # type: ignore[call-overload]
    error = values["last_error"]
    return models.Delivery(
        id=values["event_id"],
        kind=values["kind"],
        ticket=values["ticket_number"],
        recipient=values["recipient"],
        status=delivery_status(values["status"], error),
        attempts=values["attempts"],
        last_error=error[:LAST_ERROR_MAX] if error else None,
        created_at=values["created_at"],
        updated_at=values["updated_at"],
        sent_at=values["sent_at"],
    )


async def list_deliveries(
    request: web.Request, principal: Principal, query: models.DeliveryQuery
) -> web.Response:
    async with request.app[POOL].acquire(timeout=3) as conn:
        rows = await store.emails_about_ticket(conn, query.ticket, DELIVERIES_MAX)
    return json_response(models.DeliveryList(items=[_delivery(r) for r in rows]))


async def resend_delivery(request: web.Request, principal: Principal) -> web.Response:
    row = await request.app[DELIVERY].resend(uuid.UUID(request.match_info["id"]))
    return json_response(_delivery(row), status=202)


async def sealing_key(request: web.Request) -> web.Response:
    public_key = sealing.public_key_of(request.app[SEALING_KEY])
    return json_response(models.SealingKey(algorithm=sealing.ALGORITHM, public_key=public_key))


ROUTES = (
    Route(
        "GET",
        "/v1/sealing-key",
        sealing_key,
        "The public key auth seals one-time tokens with (only the notifier can open them)",
        roles=None,
        response=models.SealingKey,
        tag="sealing",
    ),
    Route(
        "GET",
        "/v1/dead-letters",
        list_dead_letters,
        "Emails that could not be sent and events dead-lettered from notifier.events, oldest first",
        roles=ADMIN,
        query=models.DeadLetterQuery,
        response=models.DeadLetterList,
        tag="dead-letters",
    ),
    Route(
        "POST",
        f"/v1/dead-letters/{{id:{KEY}}}/replay",
        replay_dead_letter,
        "Put a dead letter back into notifier.events (its email is sent again)",
        roles=ADMIN,
        response=models.DeadLetter,
        status=202,
        errors=(404, 409),
        path_params={"id": KEY},
        tag="dead-letters",
    ),
    Route(
        "GET",
        "/v1/deliveries",
        list_deliveries,
        "Every email about a ticket and where its delivery stands, oldest first",
        roles=STAFF,
        query=models.DeliveryQuery,
        response=models.DeliveryList,
        tag="deliveries",
    ),
    Route(
        "POST",
        f"/v1/deliveries/{{id:{UUID}}}/resend",
        resend_delivery,
        "Send a dead email again (its dead letter is replayed)",
        roles=ADMIN,
        response=models.Delivery,
        status=202,
        errors=(404, 409),
        path_params={"id": UUID},
        tag="deliveries",
    ),
)
