"""The notifier's routes: its sealing key (public), and the admin's dead letters."""

from aiohttp import web

from services.notifier import models, store
from services.notifier.delivery import Delivery
from shared import sealing
from shared.auth import ADMIN, Principal
from shared.http import json_response
from shared.openapi import KEY, Route
from shared.resources import POOL

DELIVERY = web.AppKey("delivery", Delivery)
SEALING_KEY = web.AppKey("sealing_key", str)


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
)
