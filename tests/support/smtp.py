"""An in-process SMTP server standing in for the mail relay: it records what it receives, and a
test can make it answer 4xx/5xx or stop listening (connection refused) and start again."""

import asyncio
import contextlib
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.waiting import wait_for


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()


class SmtpSink:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.port = 0
        # When set (e.g. "451 4.3.0 Try later" or "550 5.1.1 No such user"), DATA gets this.
        self.answer: str | None = None
        # Answers for some recipients only, e.g. {"slow@example.com": "451 4.3.0 Later"}.
        self.answer_for: dict[str, str] = {}
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = self.answer or next(
            (self.answer_for[r] for r in envelope.rcpt_tos if r in self.answer_for), None
        )
        if answer is not None:
            self.refused += 1
            return answer
        raw = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, raw))
        return "250 2.0.0 OK"

    def _protocol(self) -> SMTP:
        protocol = SMTP(self, hostname="relay.test", loop=asyncio.get_running_loop())
        original = protocol.connection_made

        def connection_made(transport: asyncio.BaseTransport) -> None:
            self._transports.add(transport)
            original(transport)

        protocol.connection_made = connection_made  # type: ignore[method-assign]
        return protocol

    async def start(self) -> "SmtpSink":
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening (new connections are refused) and drop the open ones."""
        if self._server is not None:
            self._server.close()
            for transport in list(self._transports):
                transport.abort()
            self._transports.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]

    def with_id(self, message_id: str) -> list[Received]:
        return [r for r in self.received if r.message_id == message_id]

    async def wait(self, count: int, *, address: str | None = None, timeout: float = 10) -> None:
        def enough() -> bool:
            got = self.to(address) if address else self.received
            return len(got) >= count

        await wait_for(enough, timeout=timeout, message=f"{count} email(s) to {address or 'any'}")
