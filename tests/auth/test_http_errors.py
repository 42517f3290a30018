"""Every error answer of the auth routes is problem+json (SPEC §3)."""

import pytest

from tests.auth.conftest import problem

BODY_ROUTES = [
    ("POST", "/v1/token", "anyone"),
    ("POST", "/v1/token/refresh", "anyone"),
    ("POST", "/v1/logout", "anyone"),
    ("POST", "/v1/password-recovery", "anyone"),
    ("POST", "/v1/password-reset", "anyone"),
    ("PATCH", "/v1/me", "client"),
    ("PUT", "/v1/me/password", "client"),
    ("POST", "/v1/me/email", "client"),
    ("POST", "/v1/email-confirmation", "anyone"),
    ("POST", "/v1/clients", "admin"),
    ("PATCH", "/v1/clients/{number}", "admin"),
    ("PATCH", "/v1/operators/1", "admin"),
    ("POST", "/v1/operators", "admin"),
    ("POST", "/v1/clients/{number}/services", "admin"),
]


@pytest.fixture
async def callers(api, admin, client, client_headers):
    return {
        "anyone": {},
        "client": client_headers,
        "admin": admin,
        "number": client["client_number"],
    }


def _routes():
    return pytest.mark.parametrize(("method", "path", "who"), BODY_ROUTES)


@_routes()
async def test_body_over_one_mebibyte_is_413(api, callers, method, path, who):
    body = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    response = await api.http.request(
        method,
        path.format(number=callers["number"]),
        data=body,
        headers=callers[who] | {"Content-Type": "application/json"},
    )
    await problem(response, 413)


@_routes()
async def test_body_that_is_not_json_is_415(api, callers, method, path, who):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = dict(callers[who])
        if content_type:
            headers["Content-Type"] = content_type
        response = await api.http.request(
            method, path.format(number=callers["number"]), data=b'{"a": 1}', headers=headers
        )
        await problem(response, 415)


@_routes()
async def test_bad_json_is_422(api, callers, method, path, who):
    for raw in (b"{not json", b"", b"[]", b"null", b'"text"', b'{"a": 1'):
        response = await api.http.request(
            method,
            path.format(number=callers["number"]),
            data=raw,
            headers=callers[who] | {"Content-Type": "application/json"},
        )
        body = await problem(response, 422)
        assert body["errors"] and all({"field", "message"} <= e.keys() for e in body["errors"])


async def test_wrong_types_are_422_listing_each_field(api, callers):
    cases = [
        ("POST", "/v1/token", {}, {"username": ["x"], "password": [5]}, {"username", "password"}),
        ("POST", "/v1/token/refresh", {}, {"refresh_token": 1}, {"refresh_token"}),
        (
            "POST",
            "/v1/password-reset",
            {},
            {"token": None, "password": True},
            {"token", "password"},
        ),
        (
            "PATCH",
            "/v1/me",
            callers["client"],
            {"email": 5, "language": ["es"]},
            {"email", "language"},
        ),
        (
            "POST",
            "/v1/clients",
            callers["admin"],
            {"name": 1, "email": "a@b.example", "services": "hosting"},
            {"name", "services"},
        ),
        ("POST", "/v1/token", {}, {"username": "a\u0000b", "password": "p"}, {"username"}),
    ]
    for method, path, headers, body, fields in cases:
        response = await api.http.request(method, path, json=body, headers=headers)
        errors = (await problem(response, 422))["errors"]
        assert {e["field"] for e in errors} == fields, (path, errors)
        # The input is never echoed back.
        assert all("input" not in e for e in errors)


async def test_wrong_method_is_405_with_allow(api, callers):
    for method, path in (
        ("GET", "/v1/token"),
        ("DELETE", "/v1/me"),
        ("PUT", "/v1/clients"),
        ("POST", "/.well-known/jwks.json"),
        ("GET", "/v1/password-reset"),
    ):
        response = await api.http.request(method, path, headers=callers["admin"])
        await problem(response, 405)
        assert response.headers["Allow"]


async def test_unknown_route_is_404(api, callers):
    for path in ("/v1/nothing", "/v2/token", "/v1/clients/12/nothing", "/"):
        response = await api.http.get(path, headers=callers["admin"])
        await problem(response, 404)


async def test_errors_carry_no_stack_trace(api):
    response = await api.http.post(
        "/v1/token", data=b"\xff\xfe garbage", headers={"Content-Type": "application/json"}
    )
    text = await response.text()
    assert response.status == 422
    assert "Traceback" not in text and 'File "' not in text


async def test_openapi_document_lists_the_routes(api):
    response = await api.http.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    assert {"/v1/token", "/v1/me", "/v1/clients", "/v1/password-reset"} <= set(document["paths"])
