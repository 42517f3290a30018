"""Files on the panel's forms (SPEC 9.4): a form with files read part by part, each file streamed
to tickets' `POST /v1/attachments` as it arrives, and a ticket's files streamed back to the reader.

No file is ever held whole: a part is read a chunk at a time and each chunk sent on at once, so
a request holds one chunk of it. The text fields keep the bounds of the other forms (a field is
read up to `FIELD_BYTES`, the message to 20,000 characters by the form's model), and the whole
body to what five files and the text may take.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from babel.numbers import format_decimal

from services.panel import forms, sessions
from services.panel.backend import BackendError, Invalid, UserApi

log = structlog.get_logger(__name__)

# The file input's name on the forms.
FIELD = "attachments"
MAX_FILES = 5
# What is kept of a text field: more than any form takes (the message is at most 20,000
# characters, 80 KiB in UTF-8 at worst), so a longer one still fails the form's own check.
FIELD_BYTES = 96 * 1024
MAX_FIELDS = 20
CHUNK_BYTES = 64 * 1024
# The headers a download passes on from tickets, and those it adds: never shown inline, never
# sniffed into a page, never kept by a cache shared with others.
PASSED_HEADERS = ("Content-Type", "Content-Length", "Content-Disposition")
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
    "Cache-Control": "private, no-store",
}


class _TooLarge(Exception):
    """The file passed the size limit while it was being sent to tickets."""


@dataclass
class PostedForm:
    """A form as posted: its text fields, the files uploaded to tickets for it, and what went
    wrong with them (a msgid, and the page's status), to be shown next to the file field."""

    data: dict[str, str] = field(default_factory=dict)
    uploaded: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    status: int = 422
    max_bytes: int = 0

    @property
    def attachment_ids(self) -> list[str]:
        return [f["id"] for f in self.uploaded]


def human_size(size: int, language: str) -> str:
    """A file's size as people read it, in their language ("1,5 MiB" in Spanish)."""
    value: float = size
    for unit in ("B", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            break
        value /= 1024
    pattern = "#,##0" if unit == "B" else "#,##0.#"
    return f"{format_decimal(value, format=pattern, locale=language)} {unit}"


async def read_form(request: web.Request, api: UserApi, max_bytes: int) -> PostedForm:
    """The posted form, its files uploaded to tickets as they arrive. A form sent without files
    (urlencoded) is read as the other forms are."""
    parts = request.get(sessions.FORM_PARTS)
    if parts is None:
        data = await request.post()
        return PostedForm({k: v for k, v in data.items() if isinstance(v, str)})
    limit = MAX_FILES * (max_bytes + CHUNK_BYTES) + MAX_FIELDS * FIELD_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    form = PostedForm(max_bytes=max_bytes)
    try:
        while (part := await parts.next()) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                raise web.HTTPBadRequest()
            if part.filename is None:
                await _read_field(form, part)
            elif part.name == FIELD and form.error is None:
                await _upload(form, api, part)
            # Any other file, or one after a failure, is passed over: `next` reads it away.
    except (ValueError, HttpProcessingError) as exc:
        raise web.HTTPBadRequest() from exc
    return form


async def _read_field(form: PostedForm, part: BodyPartReader) -> None:
    if len(form.data) >= MAX_FIELDS:
        raise web.HTTPBadRequest()
    value = bytearray()
    # The rest of a field longer than that is read and dropped: the form comes back with what
    # was kept and the field's own error ("at most 20,000 characters"), not a bare 413 page.
    while chunk := await part.read_chunk(CHUNK_BYTES):
        value += chunk[: FIELD_BYTES - len(value)]
    form.data.setdefault(part.name or "", value.decode(errors="replace"))


async def _upload(form: PostedForm, api: UserApi, part: BodyPartReader) -> None:
    first = await part.read_chunk(CHUNK_BYTES)
    if not part.filename and not first:
        return  # an empty file input: browsers send it as a nameless, empty file
    if len(form.uploaded) >= MAX_FILES:
        form.error = forms.TOO_MANY_FILES
        return
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = first
        while chunk:
            sent += len(chunk)
            if sent > form.max_bytes:
                raise _TooLarge()
            yield chunk
            chunk = await part.read_chunk(CHUNK_BYTES)

    body = aiohttp.MultipartWriter("form-data")
    payload = aiohttp.payload.AsyncIterablePayload(chunks())
    payload.set_content_disposition("form-data", name="file", filename=part.filename or "")
    body.append_payload(payload)
    try:
        form.uploaded.append(await api.upload(body))
    except BackendError as exc:
        if sent > form.max_bytes or exc.status == 413:
            form.max_bytes = int(exc.problem.get("max_bytes") or form.max_bytes)
            form.error, form.status = forms.FILE_TOO_LARGE, 413
        elif isinstance(exc, Invalid):
            form.error = forms.BAD_FILE_NAME
        else:
            raise
        log.info("panel.attachment_refused", status=exc.status, size=sent)


def field_error(form: PostedForm, gettext: Any, language: str) -> str | None:
    """The file field's error in the reader's words (with the size limit in them)."""
    if form.error is None:
        return None
    return gettext(form.error) % {"size": human_size(form.max_bytes, language)}


async def download(request: web.Request, api: UserApi, number: int) -> web.StreamResponse:
    """A ticket's file (owner or operator, as tickets decides), passed through a chunk at a
    time; tickets' refusal is the panel's error page (404 stays 404)."""
    path = f"/v1/tickets/{number}/attachments/{request.match_info['id']}"
    async with api.download(path) as answer:
        response = web.StreamResponse(
            headers={k: answer.headers[k] for k in PASSED_HEADERS if k in answer.headers}
            | DOWNLOAD_HEADERS
        )
        await response.prepare(request)
        try:
            async for chunk in answer.content.iter_chunked(CHUNK_BYTES):
                await response.write(chunk)
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            # tickets stopped answering, or the reader left. The headers are sent, so no error
            # page can follow: the connection is closed short of Content-Length, which a browser
            # reports as a failed download.
            log.warning("panel.download_cut", path=path, error=repr(exc))
            response.force_close()
            return response
        await response.write_eof()
    return response
