"""The panel's SQL: its generated secrets and the server-side sessions."""

from datetime import datetime
from typing import Any

import asyncpg

from shared.db import stored_secret

Conn = asyncpg.Connection | asyncpg.Pool
Record = asyncpg.Record

_SESSION_COLUMNS = """
    id, csrf_token, language, time_zone, kind, role, name, client_number, access_token,
    refresh_token, access_expires_at, created_at, expires_at
"""


async def secret(conn: Conn, name: str, candidate: str) -> str:
    return await stored_secret(conn, "panel_secrets", name, candidate)


async def insert_session(
    conn: Conn, *, id: str, csrf_token: str, expires_at: datetime, **fields: Any
) -> Record:
    return await conn.fetchrow(
        f"""
        INSERT INTO sessions (id, csrf_token, expires_at, language, kind, name, client_number,
                              access_token, refresh_token, access_expires_at, role, time_zone)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        RETURNING {_SESSION_COLUMNS}
        """,
        id,
        csrf_token,
        expires_at,
        fields.get("language"),
        fields.get("kind"),
        fields.get("name"),
        fields.get("client_number"),
        fields.get("access_token"),
        fields.get("refresh_token"),
        fields.get("access_expires_at"),
        fields.get("role"),
        fields.get("time_zone"),
    )


async def live_session(conn: Conn, id: str, *, for_update: bool = False) -> Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = $1 AND expires_at > now(){lock}", id
    )


async def touch_session(conn: Conn, id: str, expires_at: datetime) -> None:
    await conn.execute("UPDATE sessions SET expires_at = $2 WHERE id = $1", id, expires_at)


async def set_language(conn: Conn, id: str, language: str) -> None:
    await conn.execute("UPDATE sessions SET language = $2 WHERE id = $1", id, language)


async def set_time_zone(conn: Conn, id: str, time_zone: str) -> None:
    await conn.execute("UPDATE sessions SET time_zone = $2 WHERE id = $1", id, time_zone)


async def set_tokens(
    conn: Conn, id: str, *, access_token: str, refresh_token: str, access_expires_at: datetime
) -> None:
    await conn.execute(
        """
        UPDATE sessions SET access_token = $2, refresh_token = $3, access_expires_at = $4
        WHERE id = $1
        """,
        id,
        access_token,
        refresh_token,
        access_expires_at,
    )


async def delete_session(conn: Conn, id: str) -> None:
    await conn.execute("DELETE FROM sessions WHERE id = $1", id)


async def expire_session(conn: Conn, id: str) -> None:
    """Ends a session now (kept out of sight; purged with the other expired ones)."""
    await conn.execute("UPDATE sessions SET expires_at = now() WHERE id = $1", id)


async def purge_expired(conn: Conn) -> int:
    result = await conn.execute("DELETE FROM sessions WHERE expires_at < now()")
    return int(result.split()[-1])
