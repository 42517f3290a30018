"""The benchmark's SMTP sink: notes the time each message is accepted, keeps nothing on disk
while it runs (so it costs little), and writes what it received when told to stop.

    python -m bench.sink --port N --out var/bench-sink.jsonl

On SIGTERM it writes one JSON line per message: {"t": <epoch seconds at DATA accepted>,
"token": <the first `bench-<hex>` token of the plain-text body or null>, "to": [...]} and exits.
Parsing waits until then, so it does not compete with the services for the CPU during a run.
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
from aiosmtpd.smtp import SMTP, Envelope, Session

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

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(
            (time.time(), list(envelope.rcpt_tos), envelope.original_content or b"")
        )
        return "250 OK"

    def dump(self, path: Path) -> None:
        with path.open("w") as out:
            for accepted, rcpt, data in self.received:
                found = RAW_TOKEN.search(data)
                token = found.group(0).decode() if found else _parsed_token(data)
                row = {"t": accepted, "token": token, "to": rcpt}
                out.write(json.dumps(row) + "\n")


async def serve(port: int, out: Path) -> None:
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(
        lambda: SMTP(recorder, hostname="bench-sink.local"), host="127.0.0.1", port=port
    )
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
