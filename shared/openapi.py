"""Routes declared once, with the pydantic models that validate them; the OpenAPI 3.1 document is
generated from the same declarations, so the document cannot drift from what is enforced.

A handler receives what the route declares as keyword arguments: `body` (the validated request
model), `query` (the validated query model), `upload` (a file to read, shared/uploads.py) and
`principal` (when the route needs a token).
"""

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.auth import ANYONE, Role, authenticate
from shared.errors import UnsupportedMediaType, ValidationFailed
from shared.http import PROBLEM_CONTENT_TYPE, validation_errors
from shared.uploads import Upload, read_upload

Handler = Callable[..., Awaitable[web.StreamResponse]]
_PATH_REGEX = re.compile(r"\{(\w+)(?::(?:[^{}]|\{[^{}]*\})+)?\}")
# A path segment naming a row by its bigint key: longer digit strings match no route (404), so
# handlers never see a number PostgreSQL cannot hold.
KEY = r"[0-9]{1,18}"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    roles: tuple[Role, ...] | None = ANYONE  # None: no token needed
    body: type[BaseModel] | None = None
    # False: a request without a body is the body model with its defaults.
    body_required: bool = True
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None  # a RootModel for a list; None: empty answer
    # A multipart/form-data file instead of a JSON body, with its own size limit.
    upload: Upload | None = None
    # The answer is a file of any media type (not JSON), with these headers: name -> description.
    file_response: dict[str, str] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    path_params: dict[str, str] = field(default_factory=dict)  # name -> regex of its value
    # Optional request headers: name -> (description, regex of the value).
    headers: dict[str, tuple[str, str]] = field(default_factory=dict)
    tag: str = "api"

    @property
    def openapi_path(self) -> str:
        return _PATH_REGEX.sub(r"{\1}", self.path)


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


async def read_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """Parse and validate a JSON body: 415 if it is not JSON, 413 past 1 MiB, 422 if invalid."""
    if not _is_json(request.content_type):
        raise UnsupportedMediaType("Send the body as application/json.")
    raw = await request.read()  # aiohttp refuses more than client_max_size with 413
    try:
        return model.model_validate_json(raw or b"")
    except ValidationError as exc:
        raise ValidationFailed("The request body is not valid.", validation_errors(exc)) from exc


def read_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise ValidationFailed(
            "The query parameters are not valid.", validation_errors(exc)
        ) from exc


def _wrap(route: Route) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        kwargs: dict[str, Any] = {}
        if route.roles is not None:
            kwargs["principal"] = await authenticate(request, route.roles)
        if route.query is not None:
            kwargs["query"] = read_query(request, route.query)
        if route.body is not None:
            if route.body_required or request.can_read_body:
                kwargs["body"] = await read_body(request, route.body)
            else:
                kwargs["body"] = route.body()
        if route.upload is not None:
            kwargs["upload"] = await read_upload(request, route.upload)
        return await route.handler(request, **kwargs)

    handler.__name__ = route.handler.__name__
    return handler


def add_routes(app: web.Application, routes: Sequence[Route], *, title: str, version: str) -> None:
    """Register the routes and `GET /openapi.json` describing them."""
    for route in routes:
        app.router.add_route(route.method, route.path, _wrap(route))
    text = ""

    async def openapi_json(request: web.Request) -> web.Response:
        # Built when first asked for, not at start: few instances ever are, and generating the
        # schemas costs a start more than all else it does in Python.
        nonlocal text
        if not text:
            text = json.dumps(openapi_document(routes, title=title, version=version))
        return web.Response(text=text, content_type="application/json")

    app.router.add_get("/openapi.json", openapi_json, allow_head=False)


def _error_statuses(route: Route) -> list[int]:
    statuses = set(route.errors) | {503}
    if route.roles is not None:
        statuses.add(401)
        if set(route.roles) != set(ANYONE):
            statuses.add(403)
    if route.body is not None or route.upload is not None:
        statuses |= {413, 415, 422}
    if route.query is not None:
        statuses.add(422)
    return sorted(statuses)


_REASONS = {
    400: "Bad request",
    401: "No valid access token",
    403: "The account's role may not do this",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Body too large: over 1 MiB of JSON, or a file over the route's limit",
    415: "Body is not JSON (a file: not multipart/form-data)",
    422: "Invalid input; `errors` lists each bad field",
    429: "Throttled; see Retry-After",
    503: "A dependency is unavailable; try again",
}


def openapi_document(routes: Sequence[Route], *, title: str, version: str) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for route in routes:
        if route.body is not None:
            models.append((route.body, "validation"))
        if route.response is not None:
            models.append((route.response, "serialization"))
    keys, top = models_json_schema(
        list(dict.fromkeys(models)), ref_template="#/components/schemas/{model}"
    )

    def schema_of(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return keys[(model, mode)]

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {
            "operationId": route.handler.__name__,
            "summary": route.summary,
            "tags": [route.tag],
            "responses": {},
        }
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": f"^{regex}$"},
            }
            for name, regex in route.path_params.items()
        ]
        if route.query is not None:
            query_schema = route.query.model_json_schema(mode="validation")
            required = set(query_schema.get("required", []))
            for name, prop in query_schema.get("properties", {}).items():
                prop = {k: v for k, v in prop.items() if k != "title"}
                params.append(
                    {"name": name, "in": "query", "required": name in required, "schema": prop}
                )
        params += [
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": description,
                "schema": {"type": "string", "pattern": f"^{regex}$"},
            }
            for name, (description, regex) in route.headers.items()
        ]
        if params:
            op["parameters"] = params
        if route.roles is not None:
            op["security"] = [{"bearer": []}]
            op["description"] = "Allowed roles: " + ", ".join(route.roles) + "."
            # The same, for machines: tests/security checks every route against it.
            op["x-roles"] = list(route.roles)
        if route.body is not None:
            op["requestBody"] = {
                "required": route.body_required,
                "content": {"application/json": {"schema": schema_of(route.body, "validation")}},
            }
        if route.upload is not None:
            op["requestBody"] = route.upload.openapi_body()
        success: dict[str, Any] = {"description": "Success"}
        if route.file_response is not None:
            success["content"] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
            success["headers"] = {
                name: {"description": description, "schema": {"type": "string"}}
                for name, description in route.file_response.items()
            }
        if route.response is not None:
            success["content"] = {
                "application/json": {"schema": schema_of(route.response, "serialization")}
            }
        op["responses"][str(route.status)] = success
        for status in _error_statuses(route):
            op["responses"][str(status)] = {
                "description": _REASONS.get(status, "Error"),
                "content": {
                    PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
            }
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
