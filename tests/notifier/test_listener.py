"""DATA read in chunks: the message up to its end, dot-unstuffed, bounded in size."""

import asyncio

from services.notifier.listener import read_message


async def read(*pieces: bytes, limit: int | None = 1024) -> bytes | None:
    reader = asyncio.StreamReader()

    async def feed() -> None:
        for piece in pieces:  # one at a time, as the network hands them over
            reader.feed_data(piece)
            await asyncio.sleep(0)

    feeding = asyncio.create_task(feed())
    try:
        return await asyncio.wait_for(read_message(reader, limit), 5)
    finally:
        await feeding


async def test_the_message_ends_at_a_line_holding_only_a_dot() -> None:
    assert await read(b"Subject: a\r\n\r\nHola\r\n.\r\n") == b"Subject: a\r\n\r\nHola\r\n"
    assert await read(b".\r\n") == b""


async def test_leading_dots_are_unstuffed() -> None:
    raw = b"..first\r\nSubject: a\r\n\r\n..\r\n...x\r\na.b\r\n.\r\n"
    assert await read(raw) == b".first\r\nSubject: a\r\n\r\n.\r\n..x\r\na.b\r\n"


async def test_the_end_is_found_across_pieces() -> None:
    assert await read(b"Hola\r", b"\n", b".", b"\r", b"\nQUIT\r\n") == b"Hola\r\n"


async def test_a_message_over_the_limit_is_read_to_its_end_and_refused() -> None:
    pieces = [b"a" * 70 + b"\r\n"] * 100 + [b".\r\n"]
    assert await read(*pieces, limit=1000) is None
    assert await read(*pieces, limit=72 * 100) is not None


async def test_many_tiny_lines_are_read_in_a_few_steps() -> None:
    # The shape that held the loop for a second when read a line at a time.
    assert await read(b"a\r\n" * 300_000 + b".\r\n", limit=None) == b"a\r\n" * 300_000
