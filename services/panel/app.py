"""The panel's app factory, and the middleware that answers failures with HTML pages."""

import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web

from services.panel import admin, sessions, views
from services.panel.backend import Backend, BackendError, Missing, Unavailable
from services.panel.i18n import load_translations
from services.panel.sessions import CsrfFailed, SessionConfig
from services.panel.settings import PanelSettings
from services.panel.store import purge_expired, secret
from shared import resources
from shared.db import DB_UNAVAILABLE_ERRORS
from shared.errors import ServiceUnavailable
from shared.http import PROBE_PATHS, create_base_app

HERE = Path(__file__).parent
MIGRATIONS = HERE / "migrations"
log = structlog.get_logger(__name__)

ERROR_PAGES = {
    400: ("Request not understood", "The page could not understand what was sent."),
    413: ("Too large", "What you sent is too large. Messages have at most 20,000 characters."),
    403: ("Access refused", "You cannot see this page."),
    404: ("Page not found", "There is nothing here, or it is not yours to see."),
    405: ("Not allowed", "This page cannot be used like this."),
    503: (
        "Service temporarily unavailable",
        "The panel cannot reach its services right now. Try again in a few minutes.",
    ),
    500: ("Something went wrong", "Something went wrong on our side. Try again in a moment."),
}
CSRF_PAGE = (
    "Form expired",
    "This form could not be accepted: it was sent without its security code, or from another "
    "page. Go back, reload the page and send it again.",
)


def error_page(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    try:
        response = views.render(request, "error.html", status, title=title, detail=detail)
    except Exception:
        log.exception("panel.error_page_failed")
        response = web.Response(
            status=status,
            text=f"<!doctype html><h1>{title}</h1><p>{detail}</p>",
            content_type="text/html",
        )
    if status == 503:
        response.headers["Retry-After"] = "10"
    sessions.set_cookie_on(request, response)
    return response


@web.middleware
async def error_pages(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Failures as clear HTML pages in the user's language (inside the shared middlewares, which
    would answer problem+json)."""
    if request.path in PROBE_PATHS:
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.status not in ERROR_PAGES:
            raise
        return error_page(request, exc.status, *ERROR_PAGES[exc.status])
    except CsrfFailed:
        log.info("panel.csrf_refused", path=request.path)
        return error_page(request, 403, *CSRF_PAGE)
    except views.PageForbidden:
        return error_page(request, 403, *ERROR_PAGES[403])
    except Missing:
        return error_page(request, 404, *ERROR_PAGES[404])
    except Unavailable as exc:
        log.warning("panel.backend_unavailable", status=exc.status)
        return error_page(request, 503, *ERROR_PAGES[503])
    except BackendError as exc:
        if exc.status == 403:
            return error_page(request, 403, *ERROR_PAGES[403])
        log.warning("panel.backend_refused", status=exc.status, problem=exc.problem)
        return error_page(request, 500, *ERROR_PAGES[500])
    except (*DB_UNAVAILABLE_ERRORS, ServiceUnavailable) as exc:
        log.warning("panel.db_unavailable", error=repr(exc))
        return error_page(request, 503, *ERROR_PAGES[503])
    except Exception:
        log.exception("panel.unhandled_error")
        return error_page(request, 500, *ERROR_PAGES[500])


# Expired sessions (anonymous visitors' among them) are deleted at start and then this often.
SESSION_PURGE_INTERVAL = 600.0


async def purge_sessions(app: web.Application) -> None:
    purged = await purge_expired(app[resources.POOL])
    if purged:
        log.info("panel.sessions_purged", count=purged)


def create_app(settings: PanelSettings) -> web.Application:
    app = create_base_app("panel")
    app.middlewares.extend([error_pages, sessions.session_middleware])
    app[views.SETTINGS] = settings
    app[views.TRANSLATIONS] = load_translations()
    templates = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
    )
    # Each form that adds text gets a one-time id when drawn (macros.html `submission`).
    templates.globals["new_submission"] = lambda: uuid.uuid4().hex

    async def session_store(app: web.Application) -> AsyncIterator[None]:
        pool = app[resources.POOL]
        key = settings.cookie_secret or await secret(
            pool, "cookie_secret", secrets.token_urlsafe(48)
        )
        app[sessions.SESSION_CONFIG] = SessionConfig(
            key,
            idle_ttl=settings.session_idle_ttl,
            secure=settings.public_url.lower().startswith("https://"),
        )
        app[sessions.SESSION_POOL] = pool
        yield

    async def backend(app: web.Application) -> AsyncIterator[None]:
        app[views.BACKEND] = Backend(settings)
        yield
        await app[views.BACKEND].close()

    app.cleanup_ctx.extend(
        [
            resources.database(settings, "panel", MIGRATIONS),
            resources.periodic("session-purge", SESSION_PURGE_INTERVAL, purge_sessions),
            session_store,
            backend,
        ]
    )
    views.add_routes(app)
    admin.add_routes(app)
    app.router.add_static("/static/", HERE / "static")
    return app
