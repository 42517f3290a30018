"""Migrations that fill what older rows lack: 0008 gives every ticket its summary by the rule of
lifecycle.summary, written again in SQL."""

import shutil

import asyncpg
import pytest

from services.tickets import lifecycle
from services.tickets.app import MIGRATIONS
from shared.db import SHARED_MIGRATIONS, apply_migrations

BODIES = [
    "No puedo entrar a mi correo",
    "  Dos\nlíneas\t y   espacios  ",
    "x" * 60,
    "x" * 61,
    "palabra " * 20,
    "a" * 55 + " bcde fgh",
    "🙂 " * 40,
    "Hola, desde ayer no me llegan los correos del dominio example.com y necesito ayuda urgente.",
]


@pytest.fixture
async def before_0008(databases, tmp_path):
    """A tickets database migrated up to 0007, and the directory of those migrations."""
    older = tmp_path / "migrations"
    older.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if int(path.name.split("_")[0]) < 8:
            shutil.copy(path, older)
    conn = await asyncpg.connect(await databases.empty("tickets"))
    await apply_migrations(conn, [("shared", SHARED_MIGRATIONS), ("tickets", older)])
    yield conn
    await conn.close()


async def test_0008_fills_the_summary_of_existing_tickets_as_lifecycle_does(before_0008):
    conn = before_0008
    category = await conn.fetchval("SELECT id FROM categories LIMIT 1")
    for body in BODIES:
        number = await conn.fetchval(
            """
            INSERT INTO tickets (client_number, service_id, service_name, category_id, subject,
                                 status, excerpt)
            VALUES ('1', 1, 'Hosting', $1, 'Otros', 'answered', '') RETURNING number
            """,
            category,
        )
        for author, text in (("client", body), ("operator", "Respuesta")):
            await conn.execute(
                """
                INSERT INTO messages (ticket_number, author_kind, author_sub, author_name, body,
                                      channel)
                VALUES ($1, $2, 'x', 'x', $3, 'api')
                """,
                number,
                author,
                text,
            )
    await apply_migrations(conn, [("shared", SHARED_MIGRATIONS), ("tickets", MIGRATIONS)])
    rows = await conn.fetch("SELECT summary FROM tickets ORDER BY number")
    assert [r["summary"] for r in rows] == [lifecycle.summary(b) for b in BODIES]
