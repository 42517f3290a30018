"""Where a token could rest after the flows that mail one: every row of a database and every
message waiting in a vhost, as text (tests/security's token scan)."""

import re
import subprocess

import aio_pika
import asyncpg

# A token field holding anything but a sealed value (shared/sealing.py) or a hash.
BARE_TOKEN = re.compile(r'"(reset_token|set_password_token|token)"\s*:\s*"(?!sealed1:)[^"]{16,}"')


def link_token(message, path: str) -> str:
    text = message.get_body(("plain",)).get_content()
    match = re.search(re.escape(path) + r"\?token=([\w-]+)", text)
    assert match, text
    return match.group(1)


async def database_texts(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS name"
            " FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        texts = []
        for table in tables:
            for row in await conn.fetch(f"SELECT * FROM {table['name']}"):
                # bytea as the bytes it holds (a JSON body, say), not as hex.
                values = [
                    v.decode(errors="replace") if isinstance(v, bytes) else str(v)
                    for v in row.values()
                ]
                texts.append(f"{url.rsplit('/', 1)[1]} {table['name']}: {' | '.join(values)}")
        return texts
    finally:
        await conn.close()


async def queue_texts(amqp_url: str) -> list[str]:
    """Every message waiting in the suite's vhost, read and given back (unacknowledged)."""
    vhost = amqp_url.rsplit("/", 1)[1]
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    texts = []
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for name in listed:
            queue = await channel.get_queue(name, ensure=False)
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                texts.append(f"queue {name}: {message.body.decode(errors='replace')}")
        # Closing the channel gives every message back.
    return texts
