"""The admin's pages (SPEC 9.4): clients and operators, on auth's admin routes.

Everyone but a signed-in admin gets 404, as for a page that does not exist: the pages don't tell
that they are there. auth checks the role again on every call, so a demoted admin's session
(its role kept from login) gets the 403 page at its first change.
"""

import contextlib
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from services.panel import forms, sessions
from services.panel.backend import Conflicting, Invalid, UserApi
from services.panel.views import render, see_other, user_api

PAGE_SIZE = 20
# auth's field names, as this panel's forms call them.
_CLIENT_FIELDS = {"name": "name", "email": "email", "language": "language", "services": "services"}
_OPERATOR_FIELDS = {"name": "name", "email": "email", "role": "role", "password": "password"}


def admin_api(request: web.Request) -> UserApi:
    session = sessions.current(request)
    if not (session.signed_in and session.is_admin):
        raise web.HTTPNotFound()
    return user_api(request)


def _number(request: web.Request) -> str:
    digits = request.match_info["number"]
    if len(digits) > 18:
        raise web.HTTPNotFound()
    return str(int(digits))


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """An admin page: its form's values and errors (none by default), and the notice of what
    was just done (`?done=`)."""
    context = {"values": {}, "errors": {}, "done": request.query.get("done")} | context
    return render(request, template, status, **context)


def _field_errors(exc: Invalid, names: dict[str, str]) -> dict[str, str]:
    """auth's 422 as this form's errors (a field auth names that the form lacks goes to the
    first field)."""
    errors: dict[str, str] = {}
    for field in exc.field_errors:
        top = field.split(".")[0]
        errors.setdefault(names.get(top, next(iter(names.values()))), forms.INVALID)
    return errors or {next(iter(names.values())): forms.INVALID}


# --- clients -----------------------------------------------------------------------------------


async def clients_page(request: web.Request) -> web.StreamResponse:
    api = admin_api(request)
    search, _ = forms.parse(forms.ClientSearch, request.query)
    search = search or forms.ClientSearch()
    params = {"limit": str(PAGE_SIZE)}
    if search.q.strip():
        params["q"] = search.q.strip()
    if search.cursor:
        params["cursor"] = search.cursor
    try:
        page = await api.auth("GET", "/v1/clients", params=params)
    except Invalid:
        params.pop("cursor", None)  # a stale cursor: start again
        page = await api.auth("GET", "/v1/clients", params=params)
    next_url = None
    if page.get("next_cursor"):
        next_url = "/admin/clients?" + urlencode({"q": search.q, "cursor": page["next_cursor"]})
    return render(
        request, "admin_clients.html", clients=page["items"], search=search, next_url=next_url
    )


async def new_client_page(request: web.Request) -> web.StreamResponse:
    admin_api(request)
    return _page(request, "admin_client_new.html")


async def create_client(request: web.Request) -> web.StreamResponse:
    api = admin_api(request)
    data = await request.post()
    values = {k: str(data.get(k, "")) for k in ("name", "email", "language", "services")}
    form, errors = forms.parse(forms.NewClientForm, data)
    if form is None:
        return _page(request, "admin_client_new.html", 422, values=values, errors=errors)
    body = {
        "name": form.name,
        "email": form.email,
        "language": form.language,
        "services": [{"name": name} for name in form.services],
    }
    try:
        client = await api.auth("POST", "/v1/clients", json=body)
    except Invalid as exc:
        errors = _field_errors(exc, _CLIENT_FIELDS)
        return _page(request, "admin_client_new.html", 422, values=values, errors=errors)
    raise see_other(f"/admin/clients/{client['client_number']}?done=created")


async def _client_page(
    request: web.Request, api: UserApi, number: str, status: int = 200, **context: Any
) -> web.Response:
    client = await api.auth("GET", f"/v1/clients/{number}")
    return _page(request, "admin_client.html", status, client=client, **context)


async def client_page(request: web.Request) -> web.StreamResponse:
    return await _client_page(request, admin_api(request), _number(request))


async def edit_client(request: web.Request) -> web.StreamResponse:
    api, number = admin_api(request), _number(request)
    data = await request.post()
    values = {k: str(data.get(k, "")) for k in ("name", "email", "language")}
    form, errors = forms.parse(forms.ClientEditForm, data)
    if form is None:
        return await _client_page(request, api, number, 422, values=values, errors=errors)
    try:
        await api.auth("PATCH", f"/v1/clients/{number}", json=form.model_dump())
    except Invalid as exc:
        errors = _field_errors(exc, _CLIENT_FIELDS)
        return await _client_page(request, api, number, 422, values=values, errors=errors)
    raise see_other(f"/admin/clients/{number}?done=saved")


async def set_client_enabled(request: web.Request) -> web.StreamResponse:
    api, number = admin_api(request), _number(request)
    form, _ = forms.parse(forms.EnabledForm, await request.post())
    if form is None:
        raise see_other(f"/admin/clients/{number}")
    await api.auth("PATCH", f"/v1/clients/{number}", json={"disabled": form.disabled})
    raise see_other(f"/admin/clients/{number}?done={'disabled' if form.disabled else 'enabled'}")


async def add_service(request: web.Request) -> web.StreamResponse:
    api, number = admin_api(request), _number(request)
    data = await request.post()
    form, errors = forms.parse(forms.ServiceForm, data)
    values = {"service": str(data.get("service", ""))}
    if form is None:
        return await _client_page(request, api, number, 422, values=values, errors=errors)
    await api.auth("POST", f"/v1/clients/{number}/services", json={"name": form.service})
    raise see_other(f"/admin/clients/{number}?done=service")


# --- operators ---------------------------------------------------------------------------------


async def _operators_page(
    request: web.Request, api: UserApi, status: int = 200, **context: Any
) -> web.Response:
    operators: list[dict[str, Any]] = []
    cursor = None
    while True:  # a help desk has tens of operators: one page holds them all
        params = {"limit": "100"} | ({"cursor": cursor} if cursor else {})
        page = await api.auth("GET", "/v1/operators", params=params)
        operators += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return _page(request, "admin_operators.html", status, operators=operators, **context)


async def operators_page(request: web.Request) -> web.StreamResponse:
    return await _operators_page(request, admin_api(request))


async def create_operator(request: web.Request) -> web.StreamResponse:
    api = admin_api(request)
    data = await request.post()
    values = {k: str(data.get(k, "")) for k in ("name", "email", "role")}
    form, errors = forms.parse(forms.NewOperatorForm, data)
    if form is None:
        return await _operators_page(request, api, 422, values=values, errors=errors)
    try:
        await api.auth("POST", "/v1/operators", json=form.model_dump())
    except Conflicting:
        errors = {"email": "An operator with this email already exists."}
        return await _operators_page(request, api, 409, values=values, errors=errors)
    except Invalid as exc:
        errors = _field_errors(exc, _OPERATOR_FIELDS)
        if "password" in exc.field_errors:
            errors["password"] = "This password is too common. Choose another one."
        return await _operators_page(request, api, 422, values=values, errors=errors)
    raise see_other("/admin/operators?done=created")


async def change_operator(request: web.Request) -> web.StreamResponse:
    """A new role, or disabled / enabled (one form each on the page)."""
    api = admin_api(request)
    operator_id = _number(request)
    data = await request.post()
    role, _ = forms.parse(forms.RoleForm, data)
    enabled, _ = forms.parse(forms.EnabledForm, data)
    change = {"role": role.role} if role else {"disabled": enabled.disabled} if enabled else None
    if change is None:
        raise see_other("/admin/operators")
    try:
        await api.auth("PATCH", f"/v1/operators/{operator_id}", json=change)
    except Conflicting:
        failure = "The last enabled admin can be neither demoted nor disabled."
        return await _operators_page(request, api, 409, failure=failure)
    raise see_other(f"/admin/operators?done=saved#operator-{quote(operator_id)}")


# --- categories and canned replies (tickets' admin routes) ------------------------------------


async def _categories_page(
    request: web.Request, api: UserApi, status: int = 200, **context: Any
) -> web.Response:
    categories = await api.tickets("GET", "/v1/categories", params={"include_disabled": "true"})
    return _page(request, "admin_categories.html", status, categories=categories, **context)


async def categories_page(request: web.Request) -> web.StreamResponse:
    return await _categories_page(request, admin_api(request))


async def create_category(request: web.Request) -> web.StreamResponse:
    api = admin_api(request)
    data = await request.post()
    values = {"name": str(data.get("name", ""))}
    form, errors = forms.parse(forms.CategoryForm, data)
    if form is None:
        return await _categories_page(request, api, 422, values=values, errors=errors)
    try:
        await api.tickets("POST", "/v1/categories", json={"name": form.name})
    except Conflicting:
        errors = {"name": "A category with this name already exists."}
        return await _categories_page(request, api, 409, values=values, errors=errors)
    raise see_other("/admin/categories?done=created")


async def change_category(request: web.Request) -> web.StreamResponse:
    """A new name, or disabled / enabled (one form each on the page)."""
    api = admin_api(request)
    category_id = _number(request)
    data = await request.post()
    named, _ = forms.parse(forms.CategoryForm, data)
    enabled, _ = forms.parse(forms.EnabledForm, data)
    change = {"name": named.name} if named else {"disabled": enabled.disabled} if enabled else None
    if change is None:
        raise see_other("/admin/categories")
    try:
        await api.tickets("PATCH", f"/v1/categories/{category_id}", json=change)
    except Conflicting:
        failure = "A category with this name already exists."
        return await _categories_page(request, api, 409, failure=failure)
    raise see_other("/admin/categories?done=saved")


async def _canned_page(
    request: web.Request, api: UserApi, status: int = 200, **context: Any
) -> web.Response:
    replies = await api.tickets("GET", "/v1/canned-replies")
    return _page(request, "admin_canned.html", status, replies=replies, **context)


async def canned_page(request: web.Request) -> web.StreamResponse:
    return await _canned_page(request, admin_api(request))


async def save_canned(request: web.Request) -> web.StreamResponse:
    """A new canned reply, or a change of one (its id in the path)."""
    api = admin_api(request)
    reply_id = _number(request) if "number" in request.match_info else None
    data = await request.post()
    values = {k: str(data.get(k, "")) for k in ("title", "body")}
    form, errors = forms.parse(forms.CannedReplyForm, data)
    context = {"values": values, "editing": reply_id}
    if form is None:
        return await _canned_page(request, api, 422, errors=errors, **context)
    try:
        if reply_id is None:
            await api.tickets("POST", "/v1/canned-replies", json=form.model_dump())
        else:
            await api.tickets("PATCH", f"/v1/canned-replies/{reply_id}", json=form.model_dump())
    except Conflicting:
        errors = {"title": "A canned reply with this title already exists."}
        return await _canned_page(request, api, 409, errors=errors, **context)
    raise see_other(f"/admin/canned-replies?done={'created' if reply_id is None else 'saved'}")


async def delete_canned(request: web.Request) -> web.StreamResponse:
    api = admin_api(request)
    await api.tickets("DELETE", f"/v1/canned-replies/{_number(request)}")
    raise see_other("/admin/canned-replies?done=deleted")


# --- dead letters (the notifier's) --------------------------------------------------------------


async def dead_letters_page(request: web.Request) -> web.StreamResponse:
    api = admin_api(request)
    letters = await api.notifier("GET", "/v1/dead-letters", params={"limit": "200"})
    return _page(request, "admin_dead_letters.html", letters=letters)


async def replay_dead_letter(request: web.Request) -> web.StreamResponse:
    api = admin_api(request)
    with contextlib.suppress(Conflicting):  # replayed meanwhile: the list shows it gone
        await api.notifier("POST", f"/v1/dead-letters/{_number(request)}/replay")
    raise see_other("/admin/dead-letters?done=replayed")


async def home(request: web.Request) -> web.StreamResponse:
    admin_api(request)
    raise see_other("/admin/clients")


def add_routes(app: web.Application) -> None:
    client = "/admin/clients/{number:[0-9]+}"
    app.router.add_get("/admin", home)
    app.router.add_get("/admin/clients", clients_page)
    app.router.add_get("/admin/clients/new", new_client_page)
    app.router.add_post("/admin/clients/new", create_client)
    app.router.add_get(client, client_page)
    app.router.add_post(client, edit_client)
    app.router.add_post(client + "/enabled", set_client_enabled)
    app.router.add_post(client + "/services", add_service)
    app.router.add_get("/admin/operators", operators_page)
    app.router.add_post("/admin/operators", create_operator)
    app.router.add_post("/admin/operators/{number:[0-9]+}", change_operator)
    app.router.add_get("/admin/categories", categories_page)
    app.router.add_post("/admin/categories", create_category)
    app.router.add_post("/admin/categories/{number:[0-9]+}", change_category)
    app.router.add_get("/admin/canned-replies", canned_page)
    app.router.add_post("/admin/canned-replies", save_canned)
    app.router.add_post("/admin/canned-replies/{number:[0-9]+}", save_canned)
    app.router.add_post("/admin/canned-replies/{number:[0-9]+}/delete", delete_canned)
    app.router.add_get("/admin/dead-letters", dead_letters_page)
    app.router.add_post("/admin/dead-letters/{number:[0-9]+}/replay", replay_dead_letter)
