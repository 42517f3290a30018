"""The panel's pages: a validated form in, auth or tickets called, a template out."""

import asyncio
import contextlib
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import structlog
from aiohttp import web
from markupsafe import Markup, escape

from services.panel import attachments, forms, sessions
from services.panel.backend import (
    IDEMPOTENCY_KEY,
    AuthFailed,
    Backend,
    BackendError,
    Conflicting,
    Invalid,
    Throttled,
    Unavailable,
    UserApi,
    expiry,
)
from services.panel.i18n import LANGUAGE_NAMES, LANGUAGES, Locale, language_of
from services.panel.sessions import SESSION, STALE, Session, SessionExpired
from services.panel.settings import PanelSettings
from shared.http import client_address

log = structlog.get_logger(__name__)

BACKEND = web.AppKey("panel_backend", Backend)
SETTINGS = web.AppKey("panel_settings", PanelSettings)
TRANSLATIONS = web.AppKey("panel_translations", dict)
PAGE_SIZE = 20
# Statuses sent to tickets for each choice of the status filter.
STATUS_FILTERS = {"waiting": "open,customer_reply"}


class PageForbidden(Exception):
    """The signed-in user may not see this page (e.g. an operator opening a ticket)."""


# No script runs on these pages and none may frame them; the reset page's token stays out of
# Referer headers; pages with personal data stay out of caches.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
        "img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# Statuses as an operator reads them...
# The notifier's kinds of email and delivery states (SPEC 9.3), in words.
EMAIL_KINDS = {
    "reply": "Answer",
    "receipt": "Receipt",
    "closed": "Closing notice",
    "auto_reply": "Automatic answer",
    "welcome": "Welcome",
    "recovery": "Access recovery",
    "email_confirm": "Email confirmation",
    "email_notice": "Email change notice",
}
DELIVERY_STATES = {
    "queued": "Queued",
    "sent": "Sent",
    "retrying": "Retrying",
    "dead": "Failed",
}

STATUS_LABELS = {
    "open": "Open",
    "answered": "Answered",
    "customer_reply": "Customer reply",
    "closed": "Closed",
}
# ...and as the client does: whose turn it is, from their side.
CLIENT_STATUS_LABELS = STATUS_LABELS | {
    "answered": "Waiting for your reply",
    "customer_reply": "Pending with support",
}


def locale_of(request: web.Request) -> Locale:
    session: Session | None = request.get(SESSION)
    language = language_of(session.language if session else None)
    time_zone = (session.time_zone if session else None) or request.app[SETTINGS].time_zone
    return Locale(request.app[TRANSLATIONS][language], language, time_zone)


def page_context(request: web.Request) -> dict[str, Any]:
    """What every template may use: `_`, dates, statuses in words, the user, the CSRF token."""
    locale = locale_of(request)
    session: Session | None = request.get(SESSION)
    labels = CLIENT_STATUS_LABELS if session and session.kind == "client" else STATUS_LABELS
    return {
        "_": locale.gettext,
        "lang": locale.language,
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "time_zone": locale.zone.key,
        "time_zones": forms.TIME_ZONES,
        "zone_label": locale.zone_label,
        "zone_chosen": bool(session and session.time_zone),
        "dt": locale.datetime,
        "waited": locale.waited,
        "status_label": lambda status: locale.gettext(labels.get(status, status)),
        "linkify": linkify,
        "file_size": lambda size: attachments.human_size(size, locale.language),
        "max_file_size": attachments.human_size(
            request.app[SETTINGS].attachment_max_bytes, locale.language
        ),
        "email_kind": lambda kind: locale.gettext(EMAIL_KINDS.get(kind, kind)),
        "delivery_state": lambda state: locale.gettext(DELIVERY_STATES.get(state, state)),
        "session": session,
        "user": session if session is not None and session.signed_in else None,
        "csrf_token": session.csrf_token if session is not None else None,
        "here": request.path_qs,
        "path": request.path,
    }


_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)


def linkify(text: str) -> Markup:
    """The text escaped, its http(s) addresses made links that pass no authority to the target
    (`nofollow`) nor a handle on this page (`noopener`). Trailing punctuation stays text."""
    parts: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)]}")
        parts += [escape(text[last : match.start()]), _link(url)]
        last = match.start() + len(url)
    parts.append(escape(text[last:]))
    return Markup("".join(parts))


def _link(url: str) -> str:
    return f'<a href="{escape(url)}" rel="nofollow noopener noreferrer">{escape(url)}</a>'


def next_path(value: object, default: str = "/tickets") -> str:
    """The page to return to after signing in: a path of this site, else `default`."""
    form, _ = forms.parse(forms.NextForm, {"next": value} if value else {})
    return form.next if form is not None and form.next != "/" else default


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    context = page_context(request) | context
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(PAGE_HEADERS)
    return response


def see_other(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


def user_api(request: web.Request) -> UserApi:
    session = sessions.current(request)
    if not session.signed_in:
        if request.get(STALE):
            raise SessionExpired()
        # Back to the page asked for once signed in (an email's link to a ticket, say).
        asked = request.path_qs if request.method == "GET" and request.path != "/tickets" else ""
        raise see_other("/login?" + urlencode({"next": asked}) if asked else "/login")
    settings = request.app[SETTINGS]
    return UserApi(
        request.app[BACKEND],
        request.app[sessions.SESSION_POOL],
        session,
        settings.token_refresh_margin,
    )


def ticket_number(request: web.Request) -> int:
    digits = request.match_info["number"]
    if len(digits) > 18:
        raise web.HTTPNotFound()
    return int(digits)


# --- signing in and out ------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    raise see_other("/tickets" if sessions.current(request).signed_in else "/login")


async def login_page(request: web.Request) -> web.StreamResponse:
    after = next_path(request.query.get("next"))
    if sessions.current(request).signed_in:
        raise see_other(after)
    return render(
        request,
        "login.html",
        expired="expired" in request.query,
        reset_done="reset" in request.query,
        logged_out="bye" in request.query,
        password_changed="password" in request.query,
        staff="staff" in request.query,
        values={},
        errors={},
        next=after,
    )


def _login_page(request: web.Request, status: int, **context: Any) -> web.Response:
    """The login form again, as the staff's (email) or the clients' (client number) it was."""
    return render(request, "login.html", status, staff="staff" in request.query, **context)


async def login(request: web.Request) -> web.StreamResponse:
    data = await request.post()
    form, errors = forms.parse(forms.LoginForm, data)
    values = {"username": data.get("username", "")}
    after = next_path(data.get("next"))
    if form is None:
        return _login_page(request, 422, values=values, errors=errors, next=after)
    backend = request.app[BACKEND]
    try:
        address = client_address(request, request.app[SETTINGS].trusted_proxies)
        pair = await backend.login(form.username.strip(), form.password, address)
    except (AuthFailed, Invalid):
        failure = "The client number or the password is not correct."
        return _login_page(request, 401, values=values, errors={}, failure=failure, next=after)
    except Throttled:
        failure = "Too many failed attempts. Wait a few minutes and try again."
        return _login_page(request, 429, values=values, errors={}, failure=failure, next=after)
    try:
        me = await backend.me(pair["access_token"])
    except AuthFailed as exc:
        # A token auth has just issued and now refuses: auth is not itself (say, a key rotation
        # half done); the user can do nothing about it, so it is the "service down" page.
        raise Unavailable(503) from exc
    previous = sessions.current(request)
    await sessions.end(request)
    await sessions.sign_in(
        request,
        language=previous.language or language_of(me.get("language")),
        # The account's zone, chosen on any device; else the one this browser reported.
        time_zone=me.get("time_zone") or previous.time_zone,
        kind=me["kind"],
        role=me.get("role"),
        operator_id=me.get("operator_id"),
        name=me["name"],
        client_number=me.get("client_number"),
        access_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
        access_expires_at=expiry(pair),
    )
    log.info("panel.login", kind=me["kind"])
    raise see_other(after)


async def logout(request: web.Request) -> web.StreamResponse:
    session = sessions.current(request)
    if session.refresh_token:
        try:
            await request.app[BACKEND].logout(session.refresh_token)
        except BackendError as exc:
            # The session ends here anyway; auth forgets the refresh token when it expires.
            log.warning("panel.logout_not_revoked", status=exc.status)
    await sessions.end(request)
    sessions.start_anonymous(request, language=session.language, time_zone=session.time_zone)
    raise see_other("/login?bye=1")


async def set_time_zone(request: web.Request) -> web.StreamResponse:
    form, _ = forms.parse(forms.TimeZoneForm, await request.post())
    if form is None:
        raise see_other("/")
    session = sessions.current(request)
    if session.signed_in:
        # Kept on the account, so it follows the user to another device; with auth away, for
        # this session only (the next choice tries again).
        try:
            await user_api(request).auth("PATCH", "/v1/me", json={"time_zone": form.time_zone})
        except BackendError as exc:
            log.warning("panel.time_zone_not_kept", status=exc.status)
    await sessions.set_time_zone(request, session, form.time_zone)
    raise see_other(form.next)


async def set_language(request: web.Request) -> web.StreamResponse:
    form, _ = forms.parse(forms.LanguageForm, await request.post())
    if form is None:
        raise see_other("/")
    session = sessions.current(request)
    await sessions.set_language(request, session, form.language)
    raise see_other(form.next)


# --- password recovery -------------------------------------------------------------------------


async def recover_page(request: web.Request) -> web.StreamResponse:
    return render(request, "recover.html", values={}, errors={}, sent=False)


async def recover(request: web.Request) -> web.StreamResponse:
    data = await request.post()
    form, errors = forms.parse(forms.RecoveryForm, data)
    if form is None:
        values = {"email": data.get("email", "")}
        return render(request, "recover.html", 422, values=values, errors=errors, sent=False)
    try:
        await request.app[BACKEND].recover(form.email)
    except (Invalid, Throttled) as exc:
        # Same answer whatever happened: the page must not tell which emails are known.
        log.info("panel.recovery_refused", status=exc.status)
    return render(request, "recover.html", values={}, errors={}, sent=True)


async def reset_page(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token", "")
    return render(request, "reset.html", token=token, errors={}, bad_token=not token)


async def reset(request: web.Request) -> web.StreamResponse:
    data = await request.post()
    token = str(data.get("token", ""))
    form, errors = forms.parse(forms.ResetForm, data)
    if form is None:
        bad = "token" in errors
        return render(request, "reset.html", 422, token=token, errors=errors, bad_token=bad)
    try:
        await request.app[BACKEND].reset(form.token, form.password)
    except Invalid as exc:
        errors = {"password": "This password is too common. Choose another one."}
        log.info("panel.reset_refused", fields=list(exc.field_errors))
        return render(request, "reset.html", 422, token=token, errors=errors, bad_token=False)
    except BackendError as exc:
        if exc.status >= 500:
            raise
        return render(request, "reset.html", 400, token=token, errors={}, bad_token=True)
    raise see_other("/login?reset=1")


# --- email confirmation (the link of the email-change email, SPEC 9.1) -------------------------


async def email_confirm_page(request: web.Request) -> web.StreamResponse:
    # A form, not the change itself: mail scanners open links, and opening must change nothing.
    token = request.query.get("token", "")
    return render(request, "email_confirm.html", token=token, bad_token=not token, done=False)


async def email_confirm(request: web.Request) -> web.StreamResponse:
    data = await request.post()
    token = str(data.get("token", ""))
    form, _ = forms.parse(forms.EmailConfirmForm, data)
    if form is None:
        return render(request, "email_confirm.html", 400, token="", bad_token=True, done=False)
    try:
        await request.app[BACKEND].confirm_email(form.token)
    except BackendError as exc:
        if exc.status >= 500:
            raise
        return render(request, "email_confirm.html", 400, token=token, bad_token=True, done=False)
    # auth ended every login of the account: a session of it here ends at its next refresh.
    return render(request, "email_confirm.html", token="", bad_token=False, done=True)


# --- tickets -----------------------------------------------------------------------------------


def _list_params(session: Session, query: dict[str, str]) -> tuple[forms.ListFilter, dict, dict]:
    """The filter as shown, the parameters for tickets, and the filter's errors."""
    if session.is_operator and "status" not in query:
        query = query | {"status": "waiting"}
    shown, errors = forms.parse(forms.ListFilter, query)
    if shown is None:
        shown = forms.ListFilter()
    params: dict[str, str] = {"limit": str(PAGE_SIZE)}
    if shown.status:
        params["status"] = STATUS_FILTERS.get(shown.status, shown.status)
    if session.is_operator:
        # The queue: longest wait first; any other view, newest activity first.
        params["sort"] = "waiting" if shown.status == "waiting" else "activity"
        if shown.client_number:
            params["client_number"] = shown.client_number
        if shown.assignee:
            params["assignee"] = shown.assignee
        if shown.q.strip():
            params["q"] = shown.q.strip()
    if shown.cursor:
        params["cursor"] = shown.cursor
    return shown, params, errors


async def ticket_list(request: web.Request) -> web.StreamResponse:
    api = user_api(request)
    shown, params, errors = _list_params(api.session, dict(request.query))
    try:
        page = await api.list_tickets(**params)
    except Invalid:
        # A cursor from another filter or a stale one: start again from the first page.
        params.pop("cursor", None)
        page = await api.list_tickets(**params)
    kept = shown.model_dump(exclude={"cursor"})
    next_url = None
    if page.get("next_cursor"):
        next_url = "/tickets?" + urlencode(kept | {"cursor": page["next_cursor"]})
    first_url = "/tickets?" + urlencode(kept) if shown.cursor else None
    return render(
        request,
        "tickets.html",
        tickets=page["items"],
        filter=shown,
        errors=errors,
        next_url=next_url,
        first_url=first_url,
    )


async def _new_ticket_form(
    request: web.Request, api: UserApi, status: int = 200, **context: Any
) -> web.Response:
    me = await api.me()
    categories = await api.categories()
    context.setdefault("values", {})
    context.setdefault("errors", {})
    return render(
        request,
        "new_ticket.html",
        status,
        services=me.get("services") or [],
        categories=categories,
        **context,
    )


def _client_api(request: web.Request) -> UserApi:
    api = user_api(request)
    if api.session.is_operator:
        raise PageForbidden()
    return api


async def new_ticket_page(request: web.Request) -> web.StreamResponse:
    return await _new_ticket_form(request, _client_api(request))


async def _posted_form(
    request: web.Request, api: UserApi, model: type[forms.F]
) -> tuple[forms.F | None, dict[str, str], dict[str, str], attachments.PostedForm, int]:
    """A form that may carry files: (the form or None, its text, its errors, what was uploaded,
    the status of a failure); a file's error is the file field's, with the text kept."""
    posted = await attachments.read_form(request, api, request.app[SETTINGS].attachment_max_bytes)
    form, errors = forms.parse(model, posted.data)
    locale = locale_of(request)
    if file_error := attachments.field_error(posted, locale.gettext, locale.language):
        return None, posted.data, errors | {attachments.FIELD: file_error}, posted, posted.status
    return form, posted.data, errors, posted, 422


@sessions.streamed_form
async def new_ticket(request: web.Request) -> web.StreamResponse:
    api = _client_api(request)
    form, data, errors, posted, status = await _posted_form(request, api, forms.NewTicketForm)
    values = {k: data.get(k, "") for k in ("service_id", "category_id", "body")}
    if form is None:
        return await _new_ticket_form(request, api, status, values=values, errors=errors)
    payload = form.model_dump(exclude={"submission"})
    if posted.uploaded:
        payload["attachment_ids"] = posted.attachment_ids
    try:
        ticket = await api.open_ticket(payload, form.submission)
    except Conflicting as exc:
        open_ticket = exc.problem.get("open_ticket")
        if not isinstance(open_ticket, int):
            raise
        return await _new_ticket_form(request, api, 409, values=values, duplicate=open_ticket)
    except Invalid as exc:
        if IDEMPOTENCY_KEY in exc.field_errors:
            return await _new_ticket_form(
                request, api, 409, values=values, failure=forms.ALREADY_SENT
            )
        errors = {field: forms.CHOOSE for field in exc.field_errors if field != "body"}
        if "body" in exc.field_errors or not errors:  # no field named: the query is what failed
            errors["body"] = forms.INVALID
        return await _new_ticket_form(request, api, 422, values=values, errors=errors)
    raise see_other(f"/tickets/{ticket['number']}?done=created")


def timeline(ticket: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The conversation in time order: messages, operators' notes (when the reader sees them)
    and the lines of each closing."""
    entries = [
        *(("message", m, m["created_at"]) for m in ticket["messages"]),
        *(("note", n, n["created_at"]) for n in ticket.get("notes", [])),
        *(("closure", c, c["at"]) for c in ticket.get("closures", [])),
    ]
    entries.sort(key=lambda e: datetime.fromisoformat(e[2]))
    return [(kind, item) for kind, item, _ in entries]


async def _operators(api: UserApi) -> list[dict[str, Any]] | None:
    """The enabled operators a ticket may be assigned to (tens: one page holds them), or None
    when auth cannot say now: only the "Assign to" list needs them, not the page."""
    try:
        page = await api.auth("GET", "/v1/operators", params={"limit": "100"})
    except BackendError as exc:
        log.warning("panel.operators_unavailable", status=exc.status)
        return None
    return [o for o in page["items"] if not o.get("disabled")]


async def _ticket_page(
    request: web.Request, api: UserApi, number: int, status: int = 200, **context: Any
) -> web.Response:
    ticket = await api.ticket(number)
    others: list[dict[str, Any]] = []
    canned: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] | None = []
    if api.session.is_operator:
        # Four independent reads: asked at once, the page waits for the slowest, not the sum.
        page, canned, deliveries, operators = await asyncio.gather(
            api.list_tickets(client_number=ticket["client_number"], limit="11"),
            api.tickets("GET", "/v1/canned-replies"),
            _deliveries(api, number),
            _operators(api),
        )
        others = [t for t in page["items"] if t["number"] != number][:10]
        context.setdefault("operators", operators)
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return render(
        request,
        "ticket.html",
        status,
        ticket=ticket,
        timeline=timeline(ticket),
        others=others,
        canned=canned,
        deliveries=deliveries,
        done=request.query.get("done"),
        **context,
    )


async def ticket_page(request: web.Request) -> web.StreamResponse:
    return await _ticket_page(request, user_api(request), ticket_number(request))


async def _post_message(request: web.Request, action: str) -> web.StreamResponse:
    api = user_api(request)
    number = ticket_number(request)
    form, data, errors, posted, status = await _posted_form(request, api, forms.MessageForm)
    values = {"body": data.get("body", "")}
    if form is None:
        return await _ticket_page(request, api, number, status, errors=errors, values=values)
    files = posted.attachment_ids
    try:
        if action == "reopen":
            await api.reopen(number, form.body, form.submission, files)
        else:
            seen = int(form.if_last_message_id) if form.if_last_message_id else None
            await api.reply(number, form.body, form.submission, seen, files)
    except Conflicting as exc:
        # The ticket changed meanwhile: show it as it is now, the newer message included, with
        # the text kept for sending again.
        failure = (
            "Someone wrote on this ticket while you were answering: read the newest message, "
            "then send your answer again."
            if "last_message_id" in exc.problem
            else "The ticket changed meanwhile; your text was not added. Check it and try again."
        )
        return await _ticket_page(request, api, number, 409, values=values, failure=failure)
    except Invalid as exc:
        if IDEMPOTENCY_KEY not in exc.field_errors:
            raise
        # This drawing of the form was sent before with another text: show the ticket, whose
        # form is drawn anew, with the text kept for sending again.
        return await _ticket_page(
            request, api, number, 409, values=values, failure=forms.ALREADY_SENT
        )
    raise see_other(f"/tickets/{number}?done={'reopened' if action == 'reopen' else 'replied'}")


@sessions.streamed_form
async def reply(request: web.Request) -> web.StreamResponse:
    return await _post_message(request, "reply")


@sessions.streamed_form
async def reopen(request: web.Request) -> web.StreamResponse:
    return await _post_message(request, "reopen")


async def attachment(request: web.Request) -> web.StreamResponse:
    return await attachments.download(request, user_api(request), ticket_number(request))


async def _deliveries(api: UserApi, number: int) -> list[dict[str, Any]] | None:
    """The emails about the ticket, or None when the notifier cannot say now: the ticket page
    is still worth showing without them."""
    try:
        page = await api.notifier("GET", "/v1/deliveries", params={"ticket": str(number)})
    except BackendError as exc:
        log.warning("panel.deliveries_unavailable", status=exc.status)
        return None
    return page["items"]


async def resend_email(request: web.Request) -> web.StreamResponse:
    """An admin sends a dead email again ("Reenviar")."""
    api = user_api(request)
    number = ticket_number(request)
    if not api.session.is_admin:
        raise PageForbidden()
    with contextlib.suppress(Conflicting):  # no longer dead: the page shows its state
        await api.notifier("POST", f"/v1/deliveries/{request.match_info['id']}/resend")
    raise see_other(f"/tickets/{number}?done=resent#deliveries")


async def insert_canned(request: web.Request) -> web.StreamResponse:
    """The reply form drawn again with a canned reply added to the text typed so far (the
    "Insertar" button: works without a script)."""
    api = user_api(request)
    number = ticket_number(request)
    if not api.session.is_operator:
        raise PageForbidden()
    data = await request.post()
    body = str(data.get("body", ""))
    form, _ = forms.parse(forms.InsertCannedForm, data)
    if form is not None:
        replies = await api.tickets("GET", "/v1/canned-replies")
        text = next((r["body"] for r in replies if r["id"] == form.canned_id), "")
        body = f"{body.rstrip()}\n\n{text}" if body.strip() and text else body or text
    return await _ticket_page(request, api, number, values={"body": body[:20_000]})


async def add_note(request: web.Request) -> web.StreamResponse:
    api = _operator_api(request)
    number = ticket_number(request)
    data = await request.post()
    form, errors = forms.parse(forms.NoteForm, data)
    if form is None:
        values = {"note": str(data.get("note", ""))}
        return await _ticket_page(request, api, number, 422, errors=errors, values=values)
    await api.tickets("POST", f"/v1/tickets/{number}/notes", json={"body": form.note})
    raise see_other(f"/tickets/{number}?done=noted")


async def assign(request: web.Request) -> web.StreamResponse:
    api = _operator_api(request)
    number = ticket_number(request)
    form, _ = forms.parse(forms.AssignForm, await request.post())
    if form is None:
        raise see_other(f"/tickets/{number}")
    operator_id = int(form.operator_id) if form.operator_id else None
    try:
        await api.tickets("POST", f"/v1/tickets/{number}/assign", json={"operator_id": operator_id})
    except Invalid:
        failure = "This operator cannot take tickets now (disabled, or not known yet)."
        return await _ticket_page(request, api, number, 422, failure=failure)
    raise see_other(f"/tickets/{number}?done=assigned")


def _operator_api(request: web.Request) -> UserApi:
    api = user_api(request)
    if not api.session.is_operator:
        raise PageForbidden()
    return api


async def close_page(request: web.Request) -> web.StreamResponse:
    """An operator confirms a close: the client is emailed about it."""
    api = _operator_api(request)
    ticket = await api.ticket(ticket_number(request))
    return render(request, "close_confirm.html", ticket=ticket)


async def close(request: web.Request) -> web.StreamResponse:
    """An operator's close (confirmed), or a client marking their ticket resolved."""
    api = user_api(request)
    number = ticket_number(request)
    with contextlib.suppress(Conflicting):  # already closed: the page shows it so
        await api.close(number)
    raise see_other(f"/tickets/{number}?done=closed")


# --- the user's own account (SPEC 9.4: /profile) ----------------------------------------------


async def _profile(
    request: web.Request, api: UserApi, status: int = 200, **context: Any
) -> web.Response:
    context.setdefault("values", {})
    context.setdefault("errors", {})
    done = request.query.get("done")
    return render(request, "profile.html", status, me=await api.me(), done=done, **context)


async def profile_page(request: web.Request) -> web.StreamResponse:
    return await _profile(request, user_api(request))


async def profile_language(request: web.Request) -> web.StreamResponse:
    """The language of the client's emails, and of these pages."""
    api = _client_api(request)
    form, _ = forms.parse(forms.ProfileLanguageForm, await request.post())
    if form is None:
        raise see_other("/profile")
    await api.set_language(form.language)
    await sessions.set_language(request, api.session, form.language)
    raise see_other("/profile?done=language")


async def change_email(request: web.Request) -> web.StreamResponse:
    api = _client_api(request)
    data = await request.post()
    form, errors = forms.parse(forms.EmailChangeForm, data)
    values = {"new_email": str(data.get("new_email", ""))}
    if form is None:
        return await _profile(request, api, 422, values=values, errors=errors)
    address = client_address(request, request.app[SETTINGS].trusted_proxies)
    try:
        await api.change_email(form.new_email, form.current_password, address)
    except Throttled:
        errors = {"current_password": forms.TOO_MANY_TRIES}
        return await _profile(request, api, 429, values=values, errors=errors)
    except Invalid as exc:
        same = exc.field_errors.get("email") == "This is already your email."
        errors = {"new_email": forms.SAME_EMAIL if same else forms.BAD_EMAIL}
        return await _profile(request, api, 422, values=values, errors=errors)
    except BackendError as exc:
        if exc.status != 400:
            raise
        errors = {"current_password": forms.WRONG_PASSWORD}
        return await _profile(request, api, 422, values=values, errors=errors)
    raise see_other("/profile?done=email")


async def change_password(request: web.Request) -> web.StreamResponse:
    api = user_api(request)
    data = await request.post()
    form, errors = forms.parse(forms.PasswordChangeForm, data)
    if form is None:
        return await _profile(request, api, 422, errors=errors)
    address = client_address(request, request.app[SETTINGS].trusted_proxies)
    try:
        await api.change_password(form.current_password, form.new_password, address)
    except Throttled:
        return await _profile(request, api, 429, errors={"current_password": forms.TOO_MANY_TRIES})
    except Invalid:
        errors = {"new_password": "This password is too common. Choose another one."}
        return await _profile(request, api, 422, errors=errors)
    except BackendError as exc:
        if exc.status != 400:
            raise
        return await _profile(request, api, 422, errors={"current_password": forms.WRONG_PASSWORD})
    # auth ended every login of the account, this one too: sign in again with the new password.
    session = api.session
    await sessions.end(request)
    sessions.start_anonymous(request, language=session.language, time_zone=session.time_zone)
    raise see_other("/login?password=1")


def add_routes(app: web.Application) -> None:
    number = "/tickets/{number:[0-9]+}"
    app.router.add_get("/", home)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_post("/language", set_language)
    app.router.add_post("/time-zone", set_time_zone)
    app.router.add_get("/password/recover", recover_page)
    app.router.add_post("/password/recover", recover)
    app.router.add_get("/password/reset", reset_page)
    app.router.add_post("/password/reset", reset)
    app.router.add_get("/email/confirm", email_confirm_page)
    app.router.add_post("/email/confirm", email_confirm)
    app.router.add_get("/tickets", ticket_list)
    app.router.add_get("/tickets/new", new_ticket_page)
    app.router.add_post("/tickets/new", new_ticket)
    app.router.add_get(number, ticket_page)
    app.router.add_post(number + "/reply", reply)
    app.router.add_post(number + "/reopen", reopen)
    app.router.add_get(number + "/attachments/{id:[0-9a-f-]{36}}", attachment)
    app.router.add_get(number + "/close", close_page)
    app.router.add_post(number + "/close", close)
    app.router.add_post(number + "/notes", add_note)
    app.router.add_post(number + "/assign", assign)
    app.router.add_post(number + "/insert", insert_canned)
    app.router.add_post(number + "/deliveries/{id:[0-9a-f-]{36}}/resend", resend_email)
    app.router.add_get("/profile", profile_page)
    app.router.add_post("/profile/language", profile_language)
    app.router.add_post("/profile/email", change_email)
    app.router.add_post("/profile/password", change_password)
