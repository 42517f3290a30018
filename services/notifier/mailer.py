"""Sending through the relay with aiosmtplib, and the one decision that matters about a failure:
may it work later (relay down, timeouts, 4xx) or never (5xx, an address that is not one)."""

import contextlib
from collections.abc import AsyncIterator
from email.message import EmailMessage

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

    async def send(self, message: EmailMessage, *, sender: str, recipients: list[str]) -> None:
        """Send with the envelope given explicitly (never read from the headers); raises
        SendFailed. `sender` "" is the null sender."""
        try:
            await self._client.send_message(message, sender=sender, recipients=recipients)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise classify(exc) from exc


class Mailer:
    def __init__(self, settings: NotifierSettings) -> None:
        self._settings = settings

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Relay]:
        """A connection to the relay (SendFailed if there is none), closed with QUIT on the way
        out: the caller records "sent" as soon as DATA is accepted, before the QUIT round trip,
        which keeps the window where a crash causes a duplicate as short as it can be."""
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
            raise classify(exc) from exc
        try:
            yield Relay(client)
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
