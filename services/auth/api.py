"""auth's HTTP handlers: validated input in, a rule called, a model out."""

from aiohttp import web

from services.auth import accounts, admin, models
from services.auth.accounts import Deps
from shared.auth import ADMIN, ANYONE, CLIENT, STAFF, Principal
from shared.http import address_key, client_address, json_response
from shared.openapi import KEY, Route
from shared.resources import POOL

DEPS = web.AppKey("auth_deps", Deps)


def _client_number(request: web.Request) -> int:
    return int(request.match_info["client_number"])


def _address(request: web.Request) -> str:
    """Whom the login throttle counts by: the client's address, an IPv6 client's /64."""
    return address_key(client_address(request, request.app[DEPS].settings.trusted_proxies))


async def issue_token(request: web.Request, body: models.TokenRequest) -> web.Response:
    pair = await accounts.login(
        request.app[POOL], request.app[DEPS], body.username, body.password, _address(request)
    )
    return json_response(pair, headers={"Cache-Control": "no-store"})


async def refresh_token(request: web.Request, body: models.RefreshRequest) -> web.Response:
    pair = await accounts.refresh(request.app[POOL], request.app[DEPS], body.refresh_token)
    return json_response(pair, headers={"Cache-Control": "no-store"})


async def logout(request: web.Request, body: models.RefreshRequest) -> web.Response:
    await accounts.logout(request.app[POOL], body.refresh_token)
    return web.Response(status=204)


async def jwks(request: web.Request) -> web.Response:
    document = models.Jwks.model_validate(request.app[DEPS].keys.ring.jwks())
    return json_response(document, headers={"Cache-Control": "public, max-age=60"})


async def get_me(request: web.Request, principal: Principal) -> web.Response:
    me = await accounts.profile(request.app[POOL], principal)
    return web.Response(text=me.model_dump_json(exclude_none=True), content_type="application/json")


async def update_me(
    request: web.Request, principal: Principal, body: models.ProfileUpdate
) -> web.Response:
    me = await accounts.update_profile(request.app[POOL], principal, body)
    return web.Response(text=me.model_dump_json(exclude_none=True), content_type="application/json")


async def change_email(
    request: web.Request, principal: Principal, body: models.EmailChange
) -> web.Response:
    await accounts.request_email_change(
        request.app[POOL], request.app[DEPS], principal, body, _address(request)
    )
    return web.Response(status=202)


async def confirm_email(request: web.Request, body: models.EmailConfirmation) -> web.Response:
    await accounts.confirm_email_change(request.app[POOL], body.token)
    return web.Response(status=204)


async def change_password(
    request: web.Request, principal: Principal, body: models.PasswordChange
) -> web.Response:
    await accounts.change_password(
        request.app[POOL],
        request.app[DEPS],
        principal,
        body.current_password,
        body.new_password,
        _address(request),
    )
    return web.Response(status=204)


async def create_client(
    request: web.Request, principal: Principal, body: models.ClientCreate
) -> web.Response:
    client = await accounts.create_client(request.app[POOL], request.app[DEPS], body)
    location = f"/v1/clients/{client.client_number}"
    return json_response(client, status=201, headers={"Location": location})


async def get_client(request: web.Request, principal: Principal) -> web.Response:
    return json_response(await accounts.get_client(request.app[POOL], _client_number(request)))


async def list_clients(
    request: web.Request, principal: Principal, query: models.ClientQuery
) -> web.Response:
    return json_response(await admin.list_clients(request.app[POOL], query))


async def update_client(
    request: web.Request, principal: Principal, body: models.ClientPatch
) -> web.Response:
    client = await admin.update_client(request.app[POOL], _client_number(request), body)
    return json_response(client)


async def list_operators(
    request: web.Request, principal: Principal, query: models.PageQuery
) -> web.Response:
    return json_response(await admin.list_operators(request.app[POOL], query))


async def update_operator(
    request: web.Request, principal: Principal, body: models.OperatorPatch
) -> web.Response:
    operator_id = int(request.match_info["operator_id"])
    return json_response(await admin.update_operator(request.app[POOL], operator_id, body))


async def add_service(
    request: web.Request, principal: Principal, body: models.ServiceIn
) -> web.Response:
    service = await accounts.add_service(request.app[POOL], _client_number(request), body.name)
    return json_response(service, status=201)


async def create_operator(
    request: web.Request, principal: Principal, body: models.OperatorCreate
) -> web.Response:
    operator = await accounts.create_operator(request.app[POOL], request.app[DEPS], body)
    return json_response(operator, status=201)


async def request_recovery(request: web.Request, body: models.RecoveryRequest) -> web.Response:
    await accounts.request_recovery(request.app[POOL], str(body.email))
    return web.Response(status=202)


async def reset_password(request: web.Request, body: models.PasswordReset) -> web.Response:
    await accounts.reset_password(request.app[POOL], request.app[DEPS], body.token, body.password)
    return web.Response(status=204)


ROUTES = (
    Route(
        "POST",
        "/v1/token",
        issue_token,
        "Log in: a token pair for a client number or an operator's email",
        roles=None,
        body=models.TokenRequest,
        response=models.TokenPair,
        errors=(401, 429),
        tag="tokens",
    ),
    Route(
        "POST",
        "/v1/token/refresh",
        refresh_token,
        "Exchange a refresh token for a new pair (rotation; reuse revokes the family)",
        roles=None,
        body=models.RefreshRequest,
        response=models.TokenPair,
        errors=(401,),
        tag="tokens",
    ),
    Route(
        "POST",
        "/v1/logout",
        logout,
        "End the login a refresh token belongs to",
        roles=None,
        body=models.RefreshRequest,
        status=204,
        tag="tokens",
    ),
    Route(
        "GET",
        "/.well-known/jwks.json",
        jwks,
        "Public keys that verify access tokens",
        roles=None,
        response=models.Jwks,
        tag="tokens",
    ),
    Route(
        "GET",
        "/v1/me",
        get_me,
        "The signed-in account",
        roles=ANYONE,
        response=models.Profile,
        errors=(404,),
        tag="me",
    ),
    Route(
        "PATCH",
        "/v1/me",
        update_me,
        "Change one's time zone, and a client's language (the email: POST /v1/me/email)",
        roles=ANYONE,
        body=models.ProfileUpdate,
        response=models.Profile,
        errors=(404,),
        tag="me",
    ),
    Route(
        "POST",
        "/v1/me/email",
        change_email,
        "Ask to change the client's email: a one-time link (24 h) to the new address, a notice"
        " to the old one; a wrong current password counts towards the login throttle",
        roles=CLIENT,
        body=models.EmailChange,
        status=202,
        errors=(400, 404, 429),
        tag="me",
    ),
    Route(
        "POST",
        "/v1/email-confirmation",
        confirm_email,
        "Make the new email the primary one with the emailed token (ends every login)",
        roles=None,
        body=models.EmailConfirmation,
        status=204,
        errors=(400,),
        tag="me",
    ),
    Route(
        "PUT",
        "/v1/me/password",
        change_password,
        "Change the password (ends other logins)",
        roles=ANYONE,
        body=models.PasswordChange,
        status=204,
        errors=(400, 429),
        tag="me",
    ),
    Route(
        "POST",
        "/v1/clients",
        create_client,
        "Create a client (welcome email without a password)",
        roles=ADMIN,
        body=models.ClientCreate,
        response=models.ClientOut,
        status=201,
        tag="clients",
    ),
    Route(
        "GET",
        "/v1/clients",
        list_clients,
        "Find clients by number, or by a part of the name or email (oldest first)",
        roles=STAFF,
        query=models.ClientQuery,
        response=models.ClientPage,
        tag="clients",
    ),
    Route(
        "PATCH",
        f"/v1/clients/{{client_number:{KEY}}}",
        update_client,
        "Change a client's name, email or language, or disable it (ends its logins)",
        roles=ADMIN,
        body=models.ClientPatch,
        response=models.ClientOut,
        errors=(404,),
        path_params={"client_number": KEY},
        tag="clients",
    ),
    Route(
        "GET",
        f"/v1/clients/{{client_number:{KEY}}}",
        get_client,
        "A client",
        roles=STAFF,
        response=models.ClientOut,
        errors=(404,),
        path_params={"client_number": KEY},
        tag="clients",
    ),
    Route(
        "POST",
        f"/v1/clients/{{client_number:{KEY}}}/services",
        add_service,
        "Add a service to a client",
        roles=ADMIN,
        body=models.ServiceIn,
        response=models.ServiceOut,
        status=201,
        errors=(404,),
        path_params={"client_number": KEY},
        tag="clients",
    ),
    Route(
        "POST",
        "/v1/operators",
        create_operator,
        "Create an operator or admin",
        roles=ADMIN,
        body=models.OperatorCreate,
        response=models.OperatorOut,
        status=201,
        errors=(409,),
        tag="operators",
    ),
    Route(
        "GET",
        "/v1/operators",
        list_operators,
        "The operators and admins",
        roles=STAFF,
        query=models.PageQuery,
        response=models.OperatorPage,
        tag="operators",
    ),
    Route(
        "PATCH",
        f"/v1/operators/{{operator_id:{KEY}}}",
        update_operator,
        "Change an operator's name or role, or disable it (ends its logins); 409 for the last"
        " enabled admin",
        roles=ADMIN,
        body=models.OperatorPatch,
        response=models.OperatorOut,
        errors=(404, 409),
        path_params={"operator_id": KEY},
        tag="operators",
    ),
    Route(
        "POST",
        "/v1/password-recovery",
        request_recovery,
        "Email the client number and a one-time link (202 whether or not the email is known)",
        roles=None,
        body=models.RecoveryRequest,
        status=202,
        tag="passwords",
    ),
    Route(
        "POST",
        "/v1/password-reset",
        reset_password,
        "Set a new password with a one-time token",
        roles=None,
        body=models.PasswordReset,
        status=204,
        errors=(400,),
        tag="passwords",
    ),
)
