"""The inbound SMTP listener (aiosmtpd on the service's loop), bounded in connections and in the
time one connection may hold the loop.

- At most `inbound_max_connections` at once; one more is answered 421 and closed before any
  SMTP session starts (SPEC §9.3).
- aiosmtpd reads a message a line at a time in Python, and a `StreamReader` hands over a line it
  already holds without yielding to the loop: 1 MiB of three-byte lines held the loop for a
  second (and its dot-unstuffing, after, for another 70 ms). DATA is read here in chunks instead
  (`read_message`), and commands, still a line at a time, yield to the loop every
  `_LINES_PER_TURN` lines.
"""

import asyncio
from typing import Any

import structlog
from aiosmtpd.smtp import MISSING, SMTP

from services.notifier.settings import NotifierSettings

log = structlog.get_logger(__name__)

_LINES_PER_TURN = 200
_END_OF_DATA = b"\r\n.\r\n"
_CHUNK = 64 * 1024


async def read_message(reader: asyncio.StreamReader, limit: int | None) -> bytes | None:
    """The message of a DATA command: up to the line holding only a dot, dot-unstuffed
    (RFC 5321 §4.5.2); None when it is over `limit` bytes (it is read to its end all the same,
    keeping only the bytes the end may begin in).

    Bytes after the end are dropped: a client must wait for the answer to DATA before it sends
    more (RFC 2920 §3.1).
    """
    data = bytearray(b"\r\n")  # a line end before the first line, so a dot is found there too
    over = False
    start = 0
    while (end := data.find(_END_OF_DATA, start)) < 0:
        start = max(0, len(data) - len(_END_OF_DATA) + 1)
        if over or (limit is not None and len(data) - 2 > limit):
            over = True
            del data[:start]
            start = 0
        chunk = await reader.read(_CHUNK)
        if not chunk:
            raise ConnectionResetError("the client hung up during DATA")
        data += chunk
    if over or (limit is not None and end > limit):
        return None
    return bytes(data[: end + 2]).replace(b"\r\n.", b"\r\n")[2:]


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

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, but the message is read in chunks (see the module's doc)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = await read_message(self._reader, self.data_size_limit)
        if content is None:
            self._set_post_data_state()
            await self.push("552 5.3.4 Error: Too much mail data")
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


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
