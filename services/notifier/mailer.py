"""Sending through the relay with aiosmtplib, and the one decision that matters about a failure:
may it work later (relay down, timeouts, 4xx) or never (5xx, an address that is not one)."""

import contextlib
import time
from collections.abc import AsyncIterator

import aiosmtplib

from services.notifier.settings import NotifierSettings


class SendFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def classify(exc: BaseException) -> SendFailed:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients] or [450]
        permanent = all(code >= 500 for code in codes)
        return SendFailed(f"recipient refused: {exc.recipients[0]!s}"[:500], permanent=permanent)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return SendFailed(f"{exc.code} {exc.message}"[:500], permanent=exc.code >= 500)
    # Connection refused or lost, timeouts, no STARTTLS: the relay may be back later.
    return SendFailed(f"relay unavailable: {exc!r}"[:500], permanent=False)


class Relay:
    """One open connection to the relay."""

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self._client = client

    async def send(self, message: bytes, *, sender: str, recipients: list[str]) -> None:
        """Send with the envelope given explicitly (never read from the headers); raises
        SendFailed. `sender` "" is the null sender."""
        try:
            await self._client.sendmail(sender, recipients, message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise classify(exc) from exc


class Mailer:
    """Connections to the relay, kept open between emails: connecting, EHLO and QUIT cost more
    than the email itself (three round trips, a TCP handshake and a lookup of our own name), and
    at a few hundred emails a second that was most of the notifier's time."""

    def __init__(
        self, settings: NotifierSettings, *, keep_idle: int = 8, idle_seconds: float = 30.0
    ) -> None:
        self._settings = settings
        self._keep_idle = keep_idle
        self._idle_seconds = idle_seconds
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def _reused(self) -> aiosmtplib.SMTP | None:
        """An idle connection still open; one idle for a while is checked with NOOP first (the
        relay may have closed it), so a stale one costs a reconnection, not a retry."""
        while self._idle:
            client, since = self._idle.pop()
            if client.is_connected:
                if time.monotonic() - since < 1.0:
                    return client
                if time.monotonic() - since < self._idle_seconds:
                    try:
                        await client.noop()
                        return client
                    except (aiosmtplib.SMTPException, OSError, TimeoutError):
                        pass
            client.close()
        return None

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Relay]:
        """A connection to the relay (SendFailed if there is none). The caller records "sent" as
        soon as DATA is accepted; the connection then goes back to the idle ones (or, beyond
        `keep_idle` or after any failure, is closed with QUIT)."""
        client = await self._reused()
        if client is None:
            s = self._settings
            client = aiosmtplib.SMTP(
                hostname=s.smtp_host,
                port=s.smtp_port,
                start_tls=s.smtp_starttls,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                timeout=s.smtp_timeout,
            )
            try:
                await client.connect()
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                # Refused at greeting, STARTTLS or login (a 535 for wrong credentials): a fault of
                # the relay or of our settings, not of any message, so every email is retried
                # rather than dead-lettered while someone mends it.
                raise SendFailed(
                    f"relay refused the connection: {exc!r}"[:500], permanent=False
                ) from exc
        reusable = False
        try:
            yield Relay(client)
            reusable = True
        finally:
            if reusable and client.is_connected and len(self._idle) < self._keep_idle:
                self._idle.append((client, time.monotonic()))
            else:
                await _quit(client)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            await _quit(client)


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()
