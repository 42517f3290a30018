"""The inbound messages of the security tests, and how their SMTP answer is timed."""

import time

import aiosmtplib

INBOX = "soporte@helpdesk.example"


def folded(name: str, count: int, word: str) -> bytes:
    """A header of `count` times `word`, folded into lines of about 76 bytes."""
    per_line = max(1, 74 // (len(word) + 1))
    lines = [" ".join([word] * per_line)] * (count // per_line)
    return f"{name}: ".encode() + "\r\n ".join(lines).encode() + b"\r\n"


def header_bomb() -> bytes:
    """About 1 MiB of headers that Python's email parser reads in quadratic time."""
    return (
        b"From: Juana <juana@example.com>\r\nTo: "
        + INBOX.encode()
        + b"\r\n"
        + folded("Subject", 28_500, "=?utf-8?q?a?=")
        + folded("Precedence", 19_000, "=?utf-8?q?bulk?=")
        + folded("References", 45_000, "<a@b>")
        + b"Message-ID: <bomb@example.com>\r\n\r\nHola.\r\n"
    )


def tiny_lines() -> bytes:
    """Within every bound, but 1,000 KB of empty-looking lines for the listener to read."""
    return b"From: juana@example.com\r\nSubject: lines\r\n\r\n" + b"a\r\n" * 330_000


async def smtp_answer(port: int, raw: bytes) -> tuple[int, float]:
    """The answer to DATA of `raw` and how long it took from the start of DATA."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30) as client:
        await client.ehlo()
        await client.mail("juana@example.com")
        await client.rcpt(INBOX)
        started = time.perf_counter()
        try:
            response = await client.data(raw)
            code = response.code
        except aiosmtplib.SMTPResponseException as exc:
            code = exc.code
        return code, time.perf_counter() - started
