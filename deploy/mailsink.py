"""A development SMTP sink: every email the notifier sends is kept as a file under var/mail/.

    python -m deploy.mailsink [--port 1025] [--directory var/mail]

Each message is saved as `<time>-<n>.eml` (readable in any text editor or mail client) and one
line is logged per message. Nothing is relayed anywhere.
"""

import argparse
import asyncio
import contextlib
import email
import email.policy
import itertools
import time
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from shared.logging import configure_logging, get_logger

log = get_logger("mailsink")


class SaveToDirectory:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.directory / f"{stamp}-{next(self.counter):05d}.eml"
        path.write_bytes(data)
        message = email.message_from_bytes(data, policy=email.policy.default)
        log.info(
            "mail.received",
            to=list(envelope.rcpt_tos),
            subject=str(message.get("Subject", "")),
            file=str(path),
        )
        return "250 OK: kept in " + path.name


async def serve(host: str, port: int, directory: Path) -> None:
    handler = SaveToDirectory(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="mailsink.local", data_size_limit=10 * 1024 * 1024),
        host=host,
        port=port,
    )
    log.info("mailsink.listening", host=host, port=port, directory=str(directory))
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="Keep every email as a file.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--directory", type=Path, default=Path("var/mail"))
    args = parser.parse_args()
    configure_logging("mailsink")
    args.directory.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.directory))


if __name__ == "__main__":
    main()
