"""The benchmark's SMTP sink: notes the time each message is accepted, keeps nothing on disk
while it runs (so it costs little), and writes what it received when told to stop.

It stands for the provider's mail relay (a Postfix, say), which would run on a machine of its
own and cost the suite nothing. On this 2-core machine it shares the CPU with everything it
measures, so it is a bare asyncio protocol speaking just the SMTP the notifier uses (EHLO/HELO,
MAIL, RCPT, DATA, RSET, NOOP, QUIT, with dot-unstuffing); aiosmtpd, which the tests use, took
1 ms of CPU per email here, as much as a fifth of the whole notification path.

    python -m bench.sink --port N --out var/bench-sink.jsonl

On SIGUSR1 it writes (whole, by a rename) one JSON line per message received so far:
{"t": <epoch seconds at DATA accepted>, "token": <the first `bench-<hex>` token of the plain-text
body or null>, "to": [...]}; on SIGTERM it writes them and exits. Parsing waits until then, so it
does not compete with the services for the CPU during a run.
"""

import argparse
import asyncio
import email
import email.policy
import json
import re
import signal
import time
from pathlib import Path

import uvloop

TOKEN = re.compile(r"bench-[0-9a-f]{16}")
RAW_TOKEN = re.compile(rb"bench-[0-9a-f]{16}")


def _parsed_token(data: bytes) -> str | None:
    """The token when the raw bytes do not show it (a transfer encoding split it)."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    try:
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    except (AttributeError, KeyError, LookupError):
        return None
    found = TOKEN.search(text)
    return found.group(0) if found else None


class Recorder:
    def __init__(self) -> None:
        self.received: list[tuple[float, list[str], bytes]] = []

    def dump(self, path: Path) -> None:
        partial = path.with_suffix(".partial")
        with partial.open("w") as out:
            for accepted, rcpt, data in self.received:
                found = RAW_TOKEN.search(data)
                token = found.group(0).decode() if found else _parsed_token(data)
                row = {"t": accepted, "token": token, "to": rcpt}
                out.write(json.dumps(row) + "\n")
        partial.rename(path)


class SinkProtocol(asyncio.Protocol):
    """One SMTP session: commands line by line, then DATA until the lone dot."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.buffer = b""
        self.data: list[bytes] | None = None  # lines of the message while in DATA
        self.rcpt: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(b"220 bench-sink.local ESMTP\r\n")

    def data_received(self, chunk: bytes) -> None:
        self.buffer += chunk
        replies = []
        while True:
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            reply = self.line(line)
            if reply:
                replies.append(reply)
        if replies:
            self.transport.write(b"".join(replies))

    def line(self, line: bytes) -> bytes:
        if self.data is not None:
            if line == b".":
                body = b"\r\n".join(self.data)
                self.recorder.received.append((time.time(), self.rcpt, body))
                self.data, self.rcpt = None, []
                return b"250 OK\r\n"
            self.data.append(line[1:] if line.startswith(b".") else line)
            return b""
        verb = line[:4].upper()
        if verb == b"EHLO":
            return b"250-bench-sink.local\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n"
        if verb == b"HELO":
            return b"250 bench-sink.local\r\n"
        if verb == b"MAIL":
            self.rcpt = []
            return b"250 OK\r\n"
        if verb == b"RCPT":
            address = line.partition(b":")[2].strip().split(b" ")[0].strip(b"<>")
            self.rcpt.append(address.decode(errors="replace"))
            return b"250 OK\r\n"
        if verb == b"DATA":
            self.data = []
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb in (b"RSET", b"NOOP"):
            self.rcpt = []
            return b"250 OK\r\n"
        if verb == b"QUIT":
            self.transport.write(b"221 Bye\r\n")
            self.transport.close()
            return b""
        return b"502 Command not implemented\r\n"


async def serve(port: int, out: Path) -> None:
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, recorder.dump, out)
    server = await loop.create_server(lambda: SinkProtocol(recorder), host="127.0.0.1", port=port)
    print(f"bench sink listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await stop.wait()
    recorder.dump(out)
    print(f"bench sink: {len(recorder.received)} messages written to {out}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.out))


if __name__ == "__main__":
    main()
