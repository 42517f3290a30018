"""tickets' HTTP handlers: validated input in, an operation called, a model out."""

import hmac
import uuid

from aiohttp import web

from services.tickets import attachments, canned, desk, files, models
from services.tickets.idempotency import OPENAPI_HEADER, claim_of, replay_headers
from shared.auth import ADMIN, ANYONE, CLIENT, STAFF, Principal
from shared.errors import Forbidden
from shared.http import json_response, stream_response
from shared.openapi import KEY, Route
from shared.resources import POOL
from shared.uploads import Upload, UploadedFile

# The panel marks its requests with these headers, so a reply's event says it came from the
# panel; the key (HELPDESK_PANEL_KEY, known to the panel and tickets alone) makes the mark
# believable: anyone can send the first header.
CHANNEL_HEADER = "X-Helpdesk-Channel"
PANEL_KEY_HEADER = "X-Helpdesk-Panel-Key"
PANEL_KEY = web.AppKey("panel_key", str)
# TICKETS_ATTACHMENT_MAX_BYTES, read by the upload route as the file arrives (shared/uploads.py).
ATTACHMENT_MAX_BYTES = web.AppKey("attachment_max_bytes", int)
UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def channel_of(request: web.Request) -> str:
    key = request.app.get(PANEL_KEY)
    from_panel = (
        key is not None
        and request.headers.get(CHANNEL_HEADER, "").lower() == "panel"
        and hmac.compare_digest(request.headers.get(PANEL_KEY_HEADER, "").encode(), key.encode())
    )
    return "panel" if from_panel else "api"


def _number(request: web.Request) -> int:
    return int(request.match_info["number"])


async def list_categories(
    request: web.Request, principal: Principal, query: models.CategoryQuery
) -> web.Response:
    if query.include_disabled and not principal.is_staff:
        raise Forbidden("Only operators and admins may list the disabled categories.")
    items = await desk.categories(request.app[POOL], include_disabled=query.include_disabled)
    return json_response(items)


async def create_category(
    request: web.Request, principal: Principal, body: models.CategoryIn
) -> web.Response:
    category = await desk.add_category(request.app[POOL], body.name)
    return json_response(category, status=201)


async def create_ticket(
    request: web.Request, principal: Principal, body: models.TicketCreate
) -> web.Response:
    ticket, replayed = await desk.open_ticket(
        request.app[POOL],
        principal,
        body,
        channel_of(request),
        claim_of(request, principal, "open a ticket", body),
    )
    headers = {"Location": f"/v1/tickets/{ticket.number}", **replay_headers(replayed)}
    return json_response(ticket, status=201, headers=headers)


async def list_tickets(
    request: web.Request, principal: Principal, query: models.TicketQuery
) -> web.Response:
    if not principal.is_staff and query.client_number is not None:
        raise Forbidden("Only operators can filter by client.")
    if not principal.is_staff and query.assignee is not None:
        raise Forbidden("Only operators can filter by assignee.")
    return json_response(await desk.list_tickets(request.app[POOL], principal, query))


async def get_ticket(request: web.Request, principal: Principal) -> web.Response:
    return json_response(await desk.get_ticket(request.app[POOL], principal, _number(request)))


async def add_message(
    request: web.Request, principal: Principal, body: models.ReplyIn
) -> web.Response:
    number = _number(request)
    message, replayed = await desk.reply(
        request.app[POOL],
        principal,
        number,
        body,
        channel_of(request),
        claim_of(request, principal, f"reply to {number}", body),
        if_last_message_id=body.if_last_message_id,
    )
    return json_response(message, status=201, headers=replay_headers(replayed))


async def reopen_ticket(
    request: web.Request, principal: Principal, body: models.MessageIn
) -> web.Response:
    number = _number(request)
    ticket, replayed = await desk.reopen(
        request.app[POOL],
        principal,
        number,
        body,
        channel_of(request),
        claim_of(request, principal, f"reopen {number}", body),
    )
    return json_response(ticket, headers=replay_headers(replayed))


async def close_ticket(
    request: web.Request, principal: Principal, body: models.CloseIn
) -> web.Response:
    ticket = await desk.close(
        request.app[POOL], principal, _number(request), if_last_message_id=body.if_last_message_id
    )
    return json_response(ticket)


async def add_note(request: web.Request, principal: Principal, body: models.NoteIn) -> web.Response:
    note = await desk.add_note(request.app[POOL], principal, _number(request), body.body)
    return json_response(note, status=201)


async def assign_ticket(
    request: web.Request, principal: Principal, body: models.AssignIn
) -> web.Response:
    ticket = await desk.assign(request.app[POOL], principal, _number(request), body.operator_id)
    return json_response(ticket)


async def upload_attachment(
    request: web.Request, principal: Principal, upload: UploadedFile
) -> web.Response:
    attachment = await files.upload(request.app[POOL], principal, upload)
    return json_response(attachment, status=201)


async def download_attachment(request: web.Request, principal: Principal) -> web.StreamResponse:
    pool = request.app[POOL]
    attachment_id = uuid.UUID(request.match_info["attachment_id"])
    found = await desk.attachment(pool, principal, _number(request), attachment_id)
    headers = attachments.download_headers(
        name=found.name, size=found.size, content_type=found.content_type
    )
    return await stream_response(request, headers, files.chunks(pool, found.id))


_TICKET = {"number": KEY}
_DOWNLOAD_HEADERS = {
    "Content-Disposition": "`attachment`, with the file's name (`filename*`, RFC 8187)",
    "X-Content-Type-Options": "`nosniff`",
    "Content-Security-Policy": "`sandbox`",
}

ROUTES = (
    Route(
        "GET",
        "/v1/categories",
        list_categories,
        "The categories offered for new tickets (a ticket's subject); "
        "`include_disabled=true` (operators) lists every one, each with `disabled`",
        roles=ANYONE,
        query=models.CategoryQuery,
        response=models.CategoryList,
        errors=(403,),
        tag="categories",
    ),
    Route(
        "POST",
        "/v1/categories",
        create_category,
        "Add a category",
        roles=ADMIN,
        body=models.CategoryIn,
        response=models.Category,
        status=201,
        errors=(409,),
        tag="categories",
    ),
    Route(
        "POST",
        "/v1/tickets",
        create_ticket,
        "Open a ticket about one of the client's "
        "services (409 `open_ticket` when one is open for the same service and category)",
        roles=CLIENT,
        body=models.TicketCreate,
        response=models.Ticket,
        status=201,
        errors=(409,),
        headers=OPENAPI_HEADER,
        tag="tickets",
    ),
    Route(
        "GET",
        "/v1/tickets",
        list_tickets,
        "Tickets, newest activity first (clients: their "
        "own); `sort=waiting` gives the operator queue",
        roles=ANYONE,
        query=models.TicketQuery,
        response=models.TicketPage,
        errors=(403,),
        tag="tickets",
    ),
    Route(
        "GET",
        f"/v1/tickets/{{number:{KEY}}}",
        get_ticket,
        "A ticket with all its messages, oldest first (operators: also its assignee and "
        "internal notes)",
        roles=ANYONE,
        response=models.TicketView,
        errors=(404,),
        path_params=_TICKET,
        tag="tickets",
    ),
    Route(
        "POST",
        f"/v1/tickets/{{number:{KEY}}}/messages",
        add_message,
        "Reply (a client's reply to a closed ticket is 409: reopen it; 409 with "
        "`last_message_id` when `if_last_message_id` is not the newest message)",
        roles=ANYONE,
        body=models.ReplyIn,
        response=models.Message,
        status=201,
        errors=(404, 409),
        path_params=_TICKET,
        headers=OPENAPI_HEADER,
        tag="tickets",
    ),
    Route(
        "POST",
        f"/v1/tickets/{{number:{KEY}}}/reopen",
        reopen_ticket,
        "Reopen a closed ticket, adding text to it (the owner only)",
        roles=ANYONE,
        body=models.MessageIn,
        response=models.Ticket,
        errors=(403, 404, 409),
        path_params=_TICKET,
        headers=OPENAPI_HEADER,
        tag="tickets",
    ),
    Route(
        "POST",
        "/v1/attachments",
        upload_attachment,
        "Upload a file (multipart/form-data, one part `file`) to attach to a new ticket, a "
        "reply or a reopening within 24 hours (`attachment_ids`); 413 over the size limit",
        roles=ANYONE,
        upload=Upload(ATTACHMENT_MAX_BYTES),
        response=models.Attachment,
        status=201,
        tag="attachments",
    ),
    Route(
        "GET",
        f"/v1/tickets/{{number:{KEY}}}/attachments/{{attachment_id:{UUID}}}",
        download_attachment,
        "A file of one of the ticket's messages, always as a download, never shown inline",
        roles=ANYONE,
        file_response=_DOWNLOAD_HEADERS,
        errors=(404,),
        path_params=_TICKET | {"attachment_id": UUID},
        tag="attachments",
    ),
    Route(
        "POST",
        f"/v1/tickets/{{number:{KEY}}}/close",
        close_ticket,
        "Close a ticket (the body is optional; 409 with `last_message_id` when "
        "`if_last_message_id` is not the newest message)",
        roles=ANYONE,
        body=models.CloseIn,
        body_required=False,
        response=models.TicketView,
        errors=(404, 409),
        path_params=_TICKET,
        tag="tickets",
    ),
    Route(
        "POST",
        f"/v1/tickets/{{number:{KEY}}}/notes",
        add_note,
        "Add an internal note (operators only: never shown to the client, never emailed, no "
        "change of status)",
        roles=STAFF,
        body=models.NoteIn,
        response=models.Note,
        status=201,
        errors=(404,),
        path_params=_TICKET,
        tag="tickets",
    ),
    Route(
        "POST",
        f"/v1/tickets/{{number:{KEY}}}/assign",
        assign_ticket,
        "Assign a ticket to an operator, or to nobody with null (422 for an unknown or "
        "disabled operator)",
        roles=STAFF,
        body=models.AssignIn,
        response=models.OperatorTicket,
        errors=(404,),
        path_params=_TICKET,
        tag="tickets",
    ),
)


# --- category management and canned replies (SPEC 9.2) -----------------------------------------


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def change_category(
    request: web.Request, principal: Principal, body: models.CategoryPatch
) -> web.Response:
    return json_response(await desk.change_category(request.app[POOL], _id(request), body))


async def list_canned_replies(request: web.Request, principal: Principal) -> web.Response:
    return json_response(await canned.list_replies(request.app[POOL]))


async def create_canned_reply(
    request: web.Request, principal: Principal, body: models.CannedReplyIn
) -> web.Response:
    reply = await canned.add_reply(request.app[POOL], body)
    return json_response(reply, status=201, headers={"Location": f"/v1/canned-replies/{reply.id}"})


async def change_canned_reply(
    request: web.Request, principal: Principal, body: models.CannedReplyPatch
) -> web.Response:
    return json_response(await canned.change_reply(request.app[POOL], _id(request), body))


async def delete_canned_reply(request: web.Request, principal: Principal) -> web.Response:
    await canned.remove_reply(request.app[POOL], _id(request))
    return json_response(None, status=204)


_ID = {"id": KEY}

ROUTES += (
    Route(
        "PATCH",
        f"/v1/categories/{{id:{KEY}}}",
        change_category,
        "Rename, disable or enable a category (its tickets keep their subject)",
        roles=ADMIN,
        body=models.CategoryPatch,
        response=models.CategoryState,
        errors=(404, 409),
        path_params=_ID,
        tag="categories",
    ),
    Route(
        "GET",
        "/v1/canned-replies",
        list_canned_replies,
        "The canned replies, by title",
        roles=STAFF,
        response=models.CannedReplyList,
        tag="canned-replies",
    ),
    Route(
        "POST",
        "/v1/canned-replies",
        create_canned_reply,
        "Add a canned reply (409 for a title taken, in any case)",
        roles=ADMIN,
        body=models.CannedReplyIn,
        response=models.CannedReply,
        status=201,
        errors=(409,),
        tag="canned-replies",
    ),
    Route(
        "PATCH",
        f"/v1/canned-replies/{{id:{KEY}}}",
        change_canned_reply,
        "Change a canned reply's title, body or both",
        roles=ADMIN,
        body=models.CannedReplyPatch,
        response=models.CannedReply,
        errors=(404, 409),
        path_params=_ID,
        tag="canned-replies",
    ),
    Route(
        "DELETE",
        f"/v1/canned-replies/{{id:{KEY}}}",
        delete_canned_reply,
        "Delete a canned reply",
        roles=ADMIN,
        status=204,
        errors=(404,),
        path_params=_ID,
        tag="canned-replies",
    ),
)
