"""SPEC §9.3 on the inbound listener: bounded headers (552 at DATA), a time limit on reading them
(451), at most so many connections (421), and automatic answers capped per client address."""

import asyncio
import time

import aiosmtplib
import pytest

from services.notifier.app import INBOUND
from services.notifier.inbound import AutoReplyRequested
from tests.notifier.conftest import Notifier, StartNotifier
from tests.notifier.test_headers import folded, words
from tests.notifier.test_inbound import INBOX, mail, send
from tests.notifier.test_worker_pool import LoopWatch
from tests.support.events import EventTap
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_for

AUTO = AutoReplyRequested.routing_key
REJECTED = "notifier.email.rejected"


async def refused(notifier: Notifier, raw: bytes) -> aiosmtplib.SMTPResponseException:
    with pytest.raises(aiosmtplib.SMTPResponseException) as error:
        await send(notifier, "juana@example.com", raw)
    return error.value


async def recorded(notifier: Notifier) -> int:
    return await notifier.pool.fetchval("SELECT count(*) FROM inbound_messages")


async def test_headers_over_the_bounds_are_refused_at_data_with_552(
    notifier: Notifier, tap: EventTap
) -> None:
    one_long = folded("Precedence", words(150))  # 2,099 characters unfolded
    assert (await refused(notifier, mail(extra=one_long.decode()))).code == 552
    many = b"".join(folded(f"X-Note-{i}", words(130)) for i in range(40))  # 2 KB each, 75 KB
    assert (await refused(notifier, mail(extra=many.decode()))).code == 552
    bomb = folded("Subject", words(70_000))  # the report's 1 MiB of encoded words
    started = time.perf_counter()
    error = await refused(notifier, bomb + b"\r\nHola\r\n")
    assert error.code == 552 and "headers too large" in error.message.lower()
    assert time.perf_counter() - started < 5
    assert await recorded(notifier) == 0
    # Just within the bounds: accepted.
    await send(notifier, "juana@example.com", mail(extra=folded("X-Note", words(142)).decode()))
    await tap.wait(REJECTED)
    assert await recorded(notifier) == 1


async def test_headers_not_read_within_the_time_limit_are_answered_451(
    start_notifier: StartNotifier, smtp: SmtpSink, tap: EventTap
) -> None:
    # Within the bounds, headers take milliseconds to read (2,000 characters of encoded words
    # in the Subject: a few ms): longer than this notifier's limit of 1 ms.
    notifier = await start_notifier(inbound_parse_timeout=0.001)
    raw = (
        b"From: juana@example.com\r\n"
        + folded("Subject", words(142))
        + folded("Precedence", words(499, "(a)"))
        + b"\r\nHola\r\n"
    )
    started = time.perf_counter()
    with LoopWatch() as watch:
        error = await refused(notifier, raw)
    assert error.code == 451
    assert time.perf_counter() - started < 5
    assert watch.longest < 0.25, f"the loop stalled {watch.longest * 1000:.0f} ms"
    assert await recorded(notifier) == 0


async def test_connections_beyond_the_limit_are_answered_421(
    start_notifier: StartNotifier, smtp: SmtpSink
) -> None:
    notifier = await start_notifier(inbound_max_connections=2)
    port = notifier.inbound_port
    async with (
        aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as first,
        aiosmtplib.SMTP(hostname="127.0.0.1", port=port),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        greeting = await asyncio.wait_for(reader.readline(), 5)
        assert greeting.startswith(b"421 "), greeting
        assert await asyncio.wait_for(reader.read(), 5) == b""  # and hung up
        writer.close()
        # The connections within the limit work on.
        _, response = await first.sendmail("juana@example.com", [INBOX], mail())
        assert "Accepted" in response
    listener = notifier.app[INBOUND]
    await wait_for(lambda: not listener.open, message="the connections to close")
    await send(notifier, "otro@example.com", mail(sender="otro@example.com"))
    await smtp.wait(2)


async def test_automatic_answers_are_capped_per_client_address_and_hour(
    start_notifier: StartNotifier, smtp: SmtpSink, tap: EventTap
) -> None:
    notifier = await start_notifier(auto_reply_max_per_client_address=3)
    for i in range(5):  # ever new senders from one host: each would be answered once
        await send(notifier, f"s{i}@example.com", mail(sender=f"s{i}@example.com"))
    await tap.wait(REJECTED, 5)
    await smtp.wait(3)
    assert len(tap.bodies(AUTO)) == 3
    rows = await notifier.pool.fetch(
        "SELECT client_address, answered, reason FROM inbound_messages ORDER BY id"
    )
    assert {r["client_address"] for r in rows} == {"127.0.0.1"}
    assert [r["answered"] for r in rows] == [True, True, True, False, False]
    assert "client address" in rows[-1]["reason"]
    # An hour later the host is answered again.
    await notifier.pool.execute(
        "UPDATE inbound_messages SET received_at = received_at - interval '61 minutes'"
    )
    await send(notifier, "s9@example.com", mail(sender="s9@example.com"))
    await smtp.wait(1, address="s9@example.com")


async def test_the_subject_echoed_in_an_automatic_answer_is_cut_to_100_characters(
    notifier: Notifier, smtp: SmtpSink
) -> None:
    subject = "Re: [#42] " + "muy largo " * 40
    await send(notifier, "juana@example.com", mail(subject=subject))
    await smtp.wait(1, address="juana@example.com")
    [got] = smtp.received
    assert got.message["Subject"] == "Re: " + ("[#42] " + "muy largo " * 40)[:100].strip()
