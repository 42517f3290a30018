"""The inbound SMTP listener (aiosmtpd on the service's loop), bounded in connections and in the
time one connection may hold the loop.

- At most `inbound_max_connections` at once; one more is answered 421 and closed before any
  SMTP session starts (SPEC §9.3).
- aiosmtpd reads a message line by line, and a `StreamReader` hands over a line it already holds
  without yielding to the loop: 1 MiB of empty lines kept the loop for over a second. Reads here
  yield to the loop every `_LINES_PER_TURN` lines.
"""

import asyncio
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP

from services.notifier.settings import NotifierSettings

log = structlog.get_logger(__name__)

_LINES_PER_TURN = 200


class _YieldingReader:
    """A StreamReader that lets the loop run other work every so many lines."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._lines = 0

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        self._lines += 1
        if self._lines % _LINES_PER_TURN == 0:
            await asyncio.sleep(0)
        return await self._reader.readuntil(separator)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


class _InboundSMTP(SMTP):
    def __init__(self, handler: Any, server: "InboundServer", **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._server = server

    def _cb_client_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super()._cb_client_connected(_YieldingReader(reader), writer)  # type: ignore[arg-type]

    def connection_lost(self, error: Exception | None) -> None:
        self._server.open.discard(self)
        super().connection_lost(error)


class _TooManyConnections(asyncio.Protocol):
    """Says 421 (RFC 5321 §3.8: the server is shutting the channel) and hangs up."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(
            f"421 4.7.0 {self.hostname} Too many connections; try again later\r\n".encode()
        )
        transport.close()


class InboundServer:
    """The SMTP listener, on the running loop."""

    def __init__(self, handler: Any, settings: NotifierSettings) -> None:
        self.handler = handler
        self.settings = settings
        self.open: set[SMTP] = set()
        self._server: asyncio.Server | None = None
        self.port = settings.inbound_port

    def _protocol(self) -> asyncio.Protocol:
        # Counted from the moment the protocol exists: connections accepted in one batch are
        # made (connection_made) only afterwards.
        if len(self.open) >= self.settings.inbound_max_connections:
            log.warning("inbound.too_many_connections", limit=self.settings.inbound_max_connections)
            return _TooManyConnections(self.settings.inbound_hostname)
        protocol = _InboundSMTP(
            self.handler,
            self,
            data_size_limit=self.settings.inbound_max_bytes,
            hostname=self.settings.inbound_hostname,
            ident="Helpdesk notifier",
            enable_SMTPUTF8=True,
            timeout=60,
            loop=asyncio.get_running_loop(),
        )
        self.open.add(protocol)
        return protocol

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, host=self.settings.inbound_host, port=self.settings.inbound_port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("inbound.listening", host=self.settings.inbound_host, port=self.port)

    def is_serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
