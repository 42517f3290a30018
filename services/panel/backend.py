"""The panel's HTTP client to auth and tickets: time limits, problem+json turned into exceptions,
and `UserApi`, which acts for a signed-in session and refreshes its access token transparently."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import structlog

from services.panel import store
from services.panel.sessions import Session, SessionExpired
from services.panel.settings import PanelSettings
from shared.logging import current_correlation_id
from shared.unit_of_work import unit_of_work

log = structlog.get_logger(__name__)

# tickets records a reply's channel from these headers (SPEC §6: `panel` or `api`), believing
# the first only with the key both are configured with (HELPDESK_PANEL_KEY).
CHANNEL_HEADER = "X-Helpdesk-Channel"
PANEL_KEY_HEADER = "X-Helpdesk-Panel-Key"
# tickets does a write that carries this header once (see UserApi.reply).
IDEMPOTENCY_KEY = "Idempotency-Key"


class BackendError(Exception):
    """auth or tickets answered with an error; `problem` is its problem+json body."""

    def __init__(self, status: int, problem: dict[str, Any] | None = None) -> None:
        self.status = status
        self.problem = problem or {}
        super().__init__(f"{status} {self.problem.get('detail', '')}")

    @property
    def field_errors(self) -> dict[str, str]:
        """422 errors as {field: message}, the field's last path element."""
        out: dict[str, str] = {}
        for error in self.problem.get("errors") or []:
            field = str(error.get("field", "")).rsplit(".", 1)[-1]
            out.setdefault(field, str(error.get("message", "")))
        return out


class Unavailable(BackendError):
    """auth or tickets cannot be reached, timed out or failed (5xx)."""


class AuthFailed(BackendError):
    """401: wrong credentials, or an access/refresh token no longer valid."""


class Missing(BackendError):
    """404: no such ticket or client, or not the caller's to see."""


class Conflicting(BackendError):
    """409: the ticket's state refuses the action (closed, a newer message, a duplicate)."""


class Invalid(BackendError):
    """422: the service refused the input."""


class Throttled(BackendError):
    """429: too many attempts."""


_ERRORS: dict[int, type[BackendError]] = {
    401: AuthFailed,
    404: Missing,
    409: Conflicting,
    422: Invalid,
    429: Throttled,
}


class Backend:
    """One connection pool for both services, with a total time limit on every request."""

    def __init__(self, settings: PanelSettings) -> None:
        self.auth_url = settings.auth_url.rstrip("/")
        self.tickets_url = settings.tickets_url.rstrip("/")
        self.notifier_url = settings.notifier_url.rstrip("/")
        # Sent to tickets alone: auth has no use for it.
        self._tickets_headers = {CHANNEL_HEADER: "panel"}
        if settings.panel_key is not None:
            self._tickets_headers[PANEL_KEY_HEADER] = settings.panel_key.get_secret_value()
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=settings.backend_timeout, connect=2)
        )
        # A file moves at the visitor's pace, so no total limit: only the wait for tickets'
        # answer (timed once the body is sent) or for its next bytes.
        self.file_timeout = aiohttp.ClientTimeout(
            total=None, connect=2, sock_read=settings.backend_timeout
        )

    async def close(self) -> None:
        await self.http.close()

    async def call(
        self,
        base: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        params: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        forwarded_for: str | None = None,
        data: aiohttp.MultipartWriter | None = None,
    ) -> Any:
        headers = self._headers(base, token, forwarded_for)
        if idempotency_key:
            headers[IDEMPOTENCY_KEY] = idempotency_key
        timeout = self.file_timeout if data is not None else None
        try:
            async with self.http.request(
                method,
                base + path,
                json=json,
                data=data,
                params=params,
                headers=headers,
                timeout=timeout or self.http.timeout,
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("panel.backend_unreachable", url=base + path, error=repr(exc))
            raise Unavailable(503) from exc
        return _answer(base + path, status, text)

    @asynccontextmanager
    async def download(self, token: str, path: str) -> AsyncIterator[aiohttp.ClientResponse]:
        """tickets' answer with a file, its body not read yet; an error answer raised as the
        others are. Failures while the caller reads the body are the caller's: by then its own
        answer has begun, and no error page can follow."""
        url = self.tickets_url + path
        headers = self._headers(self.tickets_url, token, None)
        try:
            response = await self.http.get(url, headers=headers, timeout=self.file_timeout)
            if response.status != 200:
                async with response:
                    _answer(url, response.status, await response.text())
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("panel.backend_unreachable", url=url, error=repr(exc))
            raise Unavailable(503) from exc
        async with response:
            yield response

    def _headers(self, base: str, token: str | None, forwarded_for: str | None) -> dict[str, str]:
        headers = dict(self._tickets_headers) if base == self.tickets_url else {}
        if forwarded_for:
            # auth throttles logins per client address, and believes this header when the
            # panel's address is among HELPDESK_TRUSTED_PROXIES.
            headers["X-Forwarded-For"] = forwarded_for
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if request_id := current_correlation_id():
            headers["X-Request-ID"] = request_id
        return headers

    # --- auth, without a session ---------------------------------------------------------------

    async def login(self, username: str, password: str, client_address: str) -> dict[str, Any]:
        return await self.call(
            self.auth_url,
            "POST",
            "/v1/token",
            json={"username": username, "password": password},
            forwarded_for=client_address,
        )

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        return await self.call(
            self.auth_url, "POST", "/v1/token/refresh", json={"refresh_token": refresh_token}
        )

    async def logout(self, refresh_token: str) -> None:
        await self.call(self.auth_url, "POST", "/v1/logout", json={"refresh_token": refresh_token})

    async def me(self, token: str) -> dict[str, Any]:
        return await self.call(self.auth_url, "GET", "/v1/me", token=token)

    async def recover(self, email: str) -> None:
        await self.call(self.auth_url, "POST", "/v1/password-recovery", json={"email": email})

    async def reset(self, token: str, password: str) -> None:
        await self.call(
            self.auth_url, "POST", "/v1/password-reset", json={"token": token, "password": password}
        )

    async def confirm_email(self, token: str) -> None:
        await self.call(self.auth_url, "POST", "/v1/email-confirmation", json={"token": token})


def _answer(url: str, status: int, text: str) -> Any:
    """The body of a success; an error answer raised as its exception."""
    if status >= 500:
        log.warning("panel.backend_failed", url=url, status=status)
        raise Unavailable(status)
    body = _json(text)
    if status >= 400:
        raise _ERRORS.get(status, BackendError)(status, body if isinstance(body, dict) else {})
    return body


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def expiry(pair: dict[str, Any]) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=int(pair.get("expires_in", 0)))


class UserApi:
    """auth and tickets on behalf of a signed-in session.

    The access token is refreshed shortly before it expires, or once after a 401. The refresh
    happens with the session's row locked, so two requests of one session (even on two panel
    instances) never spend the same refresh token twice, which auth would take for a theft and
    answer by revoking the whole login.
    """

    def __init__(self, backend: Backend, pool: asyncpg.Pool, session: Session, margin: int):
        if not session.signed_in:
            raise SessionExpired()
        self.backend = backend
        self.pool = pool
        self.session = session
        self.margin = timedelta(seconds=margin)

    async def _fresh_token(self) -> str:
        expires = self.session.access_expires_at
        if expires is None or expires - datetime.now(UTC) < self.margin:
            await self._refresh()
        assert self.session.access_token is not None
        return self.session.access_token

    async def _refresh(self) -> None:
        spent = self.session.access_token
        expired = False
        async with unit_of_work(self.pool) as work:
            conn = work.conn
            row = await store.live_session(conn, self.session.id, for_update=True)
            stored = Session.from_row(row, self.session.box) if row is not None else None
            if stored is None or stored.refresh_token is None:
                expired = True
            elif stored.access_token != spent and _still_valid(stored.access_expires_at):
                self.session.load_tokens(vars(stored))  # another request refreshed it meanwhile
            else:
                try:
                    pair = await self.backend.refresh(stored.refresh_token)
                except AuthFailed:
                    await store.expire_session(conn, self.session.id)
                    expired = True
                else:
                    fields = {
                        "access_token": pair["access_token"],
                        "refresh_token": pair["refresh_token"],
                        "access_expires_at": expiry(pair),
                    }
                    await store.set_tokens(conn, self.session.id, **self.session.sealed(fields))
                    self.session.load_tokens(fields)
        if expired:
            raise SessionExpired()

    async def _call(self, base: str, method: str, path: str, **kw: Any) -> Any:
        token = await self._fresh_token()
        try:
            return await self.backend.call(base, method, path, token=token, **kw)
        except AuthFailed:
            await self._refresh()
        try:
            return await self.backend.call(
                base, method, path, token=self.session.access_token, **kw
            )
        except AuthFailed as exc:
            # A token just issued and still refused: the service cannot verify tokens now
            # (auth's keys out of reach), which the user sees as a service being down.
            raise Unavailable(exc.status, exc.problem) from exc

    async def tickets(self, method: str, path: str, **kw: Any) -> Any:
        return await self._call(self.backend.tickets_url, method, path, **kw)

    async def auth(self, method: str, path: str, **kw: Any) -> Any:
        return await self._call(self.backend.auth_url, method, path, **kw)

    async def notifier(self, method: str, path: str, **kw: Any) -> Any:
        return await self._call(self.backend.notifier_url, method, path, **kw)

    async def me(self) -> dict[str, Any]:
        return await self._call(self.backend.auth_url, "GET", "/v1/me")

    async def categories(self) -> list[dict[str, Any]]:
        return await self.tickets("GET", "/v1/categories")

    async def list_tickets(self, **params: str) -> dict[str, Any]:
        return await self.tickets("GET", "/v1/tickets", params=params)

    async def ticket(self, number: int) -> dict[str, Any]:
        return await self.tickets("GET", f"/v1/tickets/{number}")

    # The writes that add text carry the form's one-time id as Idempotency-Key: a form sent twice
    # (a double click, or sent again after the panel answered 503 to a request that tickets did
    # carry out) adds its text once.

    async def open_ticket(self, payload: dict[str, Any], key: str | None) -> dict[str, Any]:
        return await self.tickets("POST", "/v1/tickets", json=payload, idempotency_key=key)

    async def reply(
        self,
        number: int,
        body: str,
        key: str | None,
        if_last_message_id: int | None = None,
        attachment_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        path = f"/v1/tickets/{number}/messages"
        payload: dict[str, Any] = {"body": body}
        if attachment_ids:
            payload["attachment_ids"] = attachment_ids
        if if_last_message_id is not None:
            payload["if_last_message_id"] = if_last_message_id
        return await self.tickets("POST", path, json=payload, idempotency_key=key)

    async def reopen(
        self, number: int, body: str, key: str | None, attachment_ids: list[str] | None = None
    ) -> dict[str, Any]:
        path = f"/v1/tickets/{number}/reopen"
        payload: dict[str, Any] = {"body": body}
        if attachment_ids:
            payload["attachment_ids"] = attachment_ids
        return await self.tickets("POST", path, json=payload, idempotency_key=key)

    async def close(self, number: int) -> dict[str, Any]:
        return await self.tickets("POST", f"/v1/tickets/{number}/close")

    # Files (SPEC 9.2). A streamed body cannot be sent a second time, so there is no retry after
    # a 401: the token is made fresh first, and a refusal of it is the "service down" page.

    async def upload(self, body: aiohttp.MultipartWriter) -> dict[str, Any]:
        token = await self._fresh_token()
        try:
            return await self.backend.call(
                self.backend.tickets_url, "POST", "/v1/attachments", token=token, data=body
            )
        except AuthFailed as exc:
            raise Unavailable(exc.status, exc.problem) from exc

    @asynccontextmanager
    async def download(self, path: str) -> AsyncIterator[aiohttp.ClientResponse]:
        token = await self._fresh_token()
        try:
            async with self.backend.download(token, path) as response:
                yield response
        except AuthFailed as exc:
            raise Unavailable(exc.status, exc.problem) from exc

    # --- the account (SPEC 9.1): auth counts a wrong current password against the visitor's
    # address, as a failed login.

    async def set_language(self, language: str) -> dict[str, Any]:
        return await self._call(
            self.backend.auth_url, "PATCH", "/v1/me", json={"language": language}
        )

    async def change_email(self, new_email: str, current_password: str, address: str) -> None:
        await self._call(
            self.backend.auth_url,
            "POST",
            "/v1/me/email",
            json={"email": new_email, "current_password": current_password},
            forwarded_for=address,
        )

    async def change_password(self, current: str, new: str, address: str) -> None:
        await self._call(
            self.backend.auth_url,
            "PUT",
            "/v1/me/password",
            json={"current_password": current, "new_password": new},
            forwarded_for=address,
        )


def _still_valid(expires_at: datetime | None) -> bool:
    return expires_at is not None and expires_at > datetime.now(UTC)
