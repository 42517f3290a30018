"""HTTP plumbing for every service: problem+json errors, request ids, one log line per request,
Prometheus metrics, `/healthz` and `/readyz`, and the app factory's common part."""

import json
import re
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ValidationError

from shared.db import DB_UNAVAILABLE_ERRORS
from shared.errors import ProblemError, ServiceUnavailable, ValidationFailed
from shared.logging import bind_correlation_id, current_correlation_id

log = structlog.get_logger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://helpdesk.example/problems/"
# 1 MiB: the largest message body is 20,000 characters (at most 80 kB of UTF-8); anything far
# beyond that is a mistake or an attack, refused before it is read into memory. A route that
# takes a file streams it within a limit of its own instead (shared/uploads.py).
MAX_BODY_BYTES = 1024 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def client_address(
    request: web.Request, trusted_proxies: Sequence[IPv4Network | IPv6Network]
) -> str:
    """The address of whoever sent the request: the peer's, unless the peer is a trusted proxy;
    then X-Forwarded-For is read from its end (the entry the nearest proxy added) back, skipping
    trusted proxies, and the first other address is the client's. Entries left of it were
    written by the client and prove nothing. A malformed entry stops the walk at the proxy that
    passed it on."""
    peer = _parse_address(request.remote or "")
    if peer is None:
        return request.remote or "unknown"

    def trusted(address: IPv4Address | IPv6Address) -> bool:
        return any(address in network for network in trusted_proxies)

    current = peer
    if not trusted(current):
        return str(current)
    entries = ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")
    for entry in reversed([e.strip() for e in entries if e.strip()]):
        hop = _parse_address(entry)
        if hop is None:
            break
        current = hop
        if not trusted(current):
            break
    return str(current)


def address_key(address: str) -> str:
    """What per-address limits count by: an IPv4 address as it is; an IPv6 address's /64, which
    one host (or one customer of an ISP) usually holds whole, so rotating through it gains
    nothing; an IPv4-mapped IPv6 address as its IPv4. Anything else (a test's "unknown") as it
    is, bounded."""
    parsed = _parse_address(address)
    if parsed is None:
        return address[:100]
    if isinstance(parsed, IPv6Address):  # an IPv4-mapped one is parsed as its IPv4 already
        return str(IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def _parse_address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ip_address(text)
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket counts as its IPv4 address.
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class Dependency:
    """Something the service uses, reported by /readyz as `up` or `down`; only a `required` one
    makes the service unready (and its instance taken out of the load balancer) while down."""

    name: str
    check: Callable[[], Awaitable[bool]]
    required: bool = True


DEPENDENCIES = web.AppKey("dependencies", list[Dependency])
SERVICE_NAME = web.AppKey("service_name", str)


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    type_slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body = {
        "type": PROBLEM_TYPE_BASE + (type_slug or str(status)),
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def problem_from_error(error: ProblemError) -> web.Response:
    return problem_response(
        error.status,
        error.title,
        error.detail,
        type_slug=error.type_slug,
        headers=error.headers,
        **error.extra,
    )


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic's errors as `[{"field": "a.b", "message": "..."}]`, without echoing the input."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in err["loc"]) or "body"
        out.append({"field": field, "message": err["msg"]})
    return out


def json_response(
    model: BaseModel | list[BaseModel] | None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    if model is None:
        return web.Response(status=status, headers=headers)
    if isinstance(model, list):
        text = "[" + ",".join(m.model_dump_json() for m in model) + "]"
    else:
        text = model.model_dump_json()
    return web.Response(status=status, text=text, content_type="application/json", headers=headers)


async def stream_response(
    request: web.Request, headers: dict[str, str], chunks: AsyncIterable[bytes]
) -> web.StreamResponse:
    """An answer sent as `chunks` come, never held whole (a file). Once the headers are sent no
    problem+json can follow: if the source or the client fails midway, the connection is cut
    short of the Content-Length, which every client reads as an incomplete answer. The request
    id goes with the headers: `request_middleware` adds it only after the handler, too late."""
    request_id = current_correlation_id()
    extra = {"X-Request-ID": request_id} if request_id else {}
    response = web.StreamResponse(headers=headers | extra)
    await response.prepare(request)
    try:
        async for data in chunks:
            await response.write(data)
    except (*DB_UNAVAILABLE_ERRORS, ServiceUnavailable) as exc:
        log.warning("http.stream_cut", error=repr(exc))
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


_AIOHTTP_TITLES = {
    404: ("Not Found", "not-found", "There is nothing at this address."),
    405: ("Method Not Allowed", "method-not-allowed", "This method is not allowed here."),
    413: ("Payload Too Large", "payload-too-large", "The request body is larger than 1 MiB."),
}


@web.middleware
async def problem_middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Every failure leaves as problem+json; nothing leaks a stack trace."""
    try:
        return await handler(request)
    except ProblemError as exc:
        return problem_from_error(exc)
    except ValidationError as exc:
        return problem_from_error(
            ValidationFailed("The request is not valid.", validation_errors(exc))
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        title, slug, detail = _AIOHTTP_TITLES.get(
            exc.status, (exc.reason, str(exc.status), exc.text or exc.reason)
        )
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return problem_response(exc.status, title, detail, type_slug=slug, headers=headers)
    except DB_UNAVAILABLE_ERRORS as exc:
        log.warning("http.db_unavailable", error=repr(exc))
        return problem_from_error(
            ServiceUnavailable("The database is unavailable; try again shortly.")
        )
    except Exception:
        log.exception("http.unhandled_error")
        return problem_response(
            500, "Internal Server Error", "Something went wrong on our side.", type_slug="internal"
        )


class HttpMetrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route and method",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.service = service


METRICS = web.AppKey("metrics", HttpMetrics)


def _route_label(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Correlation id from `X-Request-ID` (or new), one log line and metrics per request."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = bind_correlation_id(incoming if _REQUEST_ID.match(incoming) else None)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-ID"] = request_id
        # Time spent in the service, for benchmarks and browsers' developer tools.
        elapsed_ms = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.2f}"
        return response
    except web.HTTPException as exc:  # redirects and the like
        status = exc.status
        exc.headers["X-Request-ID"] = request_id
        raise
    finally:
        elapsed = time.perf_counter() - started
        metrics = request.app.get(METRICS)
        route = _route_label(request)
        if metrics is not None:
            metrics.requests.labels(route, request.method, str(status)).inc()
            metrics.latency.labels(route, request.method).observe(elapsed)
        # Probes come every few seconds from every orchestrator: logged only at debug level.
        write = log.debug if request.path in PROBE_PATHS else log.info
        write(
            "http.request",
            method=request.method,
            path=request.path,
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
        )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 while every required dependency is up (SPEC §9.5: the database; the broker is only
    reported, since the outbox keeps accepting work while it is away), else 503."""
    body: dict[str, str] = {}
    ready = True
    for dependency in request.app[DEPENDENCIES]:
        up = await dependency.check()
        body[dependency.name] = "up" if up else "down"
        ready = ready and (up or not dependency.required)
    return web.json_response(
        {"status": "ready" if ready else "unavailable", **body}, status=200 if ready else 503
    )


async def metrics_view(request: web.Request) -> web.Response:
    registry = request.app[METRICS].registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def create_base_app(service: str) -> web.Application:
    """An Application with the common middlewares, body limit and operational routes."""
    app = web.Application(
        middlewares=[request_middleware, problem_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[SERVICE_NAME] = service
    app[METRICS] = HttpMetrics(service)
    app[DEPENDENCIES] = []
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    app.router.add_get("/metrics", metrics_view, allow_head=False)
    return app
