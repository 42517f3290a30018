"""All of the notifier's SQL, and only SQL."""

import uuid
from datetime import datetime

import asyncpg

Conn = asyncpg.Connection
Record = asyncpg.Record

# --- the projection of clients' contact details ------------------------------------------------


async def upsert_client(
    conn: Conn,
    client_number: str,
    as_of: datetime,
    *,
    name: str | None,
    email: str | None,
    language: str | None,
) -> None:
    """Each given field replaces the stored one unless the stored one is newer."""
    await conn.execute(
        """
        INSERT INTO clients (client_number, name, email, language,
                             name_as_of, email_as_of, language_as_of)
        VALUES ($1, $2, $3, $4,
                CASE WHEN $2::text IS NULL THEN '-infinity'::timestamptz ELSE $5 END,
                CASE WHEN $3::text IS NULL THEN '-infinity'::timestamptz ELSE $5 END,
                CASE WHEN $4::text IS NULL THEN '-infinity'::timestamptz ELSE $5 END)
        ON CONFLICT (client_number) DO UPDATE SET
            name = CASE WHEN $2::text IS NOT NULL AND clients.name_as_of < $5
                        THEN $2 ELSE clients.name END,
            name_as_of = CASE WHEN $2::text IS NOT NULL AND clients.name_as_of < $5
                              THEN $5 ELSE clients.name_as_of END,
            email = CASE WHEN $3::text IS NOT NULL AND clients.email_as_of < $5
                         THEN $3 ELSE clients.email END,
            email_as_of = CASE WHEN $3::text IS NOT NULL AND clients.email_as_of < $5
                               THEN $5 ELSE clients.email_as_of END,
            language = CASE WHEN $4::text IS NOT NULL AND clients.language_as_of < $5
                            THEN $4 ELSE clients.language END,
            language_as_of = CASE WHEN $4::text IS NOT NULL AND clients.language_as_of < $5
                                  THEN $5 ELSE clients.language_as_of END
        """,
        client_number,
        name,
        email,
        language,
        as_of,
    )


async def language_of_address(conn: Conn, address: str) -> str | None:
    return await conn.fetchval(
        "SELECT language FROM clients WHERE lower(email) = lower($1) LIMIT 1", address
    )


# --- outgoing emails ---------------------------------------------------------------------------


# ON CONFLICT DO UPDATE sees the latest committed row, whatever the statement's snapshot: an
# email another delivery sent, or is sending under a lease that has not run out, is left alone.
_BEGIN_ATTEMPT = """
WITH attempt AS (
    INSERT INTO emails AS e
        (event_id, kind, status, attempts, last_attempt_at, previous_status, lease_until,
         ticket_number)
    VALUES ($1, $2, 'sending', 1, now(), 'pending', now() + make_interval(secs => $4), $5)
    ON CONFLICT (event_id) DO UPDATE
        SET status = 'sending', attempts = e.attempts + 1, last_attempt_at = now(),
            previous_status = e.status, lease_until = excluded.lease_until, updated_at = now()
        WHERE e.status = 'pending'
           OR (e.status = 'sending' AND coalesce(e.lease_until, '-infinity') <= now())
    RETURNING attempts, previous_status
)
SELECT a.attempts, a.previous_status AS previous, c.email, c.language, c.name
FROM attempt a LEFT JOIN clients c ON c.client_number = $3
"""


async def begin_attempt(
    conn: Conn,
    event_id: uuid.UUID,
    kind: str,
    client_number: str | None,
    lease_seconds: float,
    *,
    ticket_number: int | None = None,
) -> Record | None:
    """Record an attempt, with a lease of `lease_seconds`, and the client's contact details as
    they are now (null when `client_number` is None or not known yet); committed at once, before
    anything is sent. None when the email is sent or dead, or leased to another attempt
    (`email_status` tells which). `previous` is `sending` when an earlier attempt's lease ran
    out: it was interrupted, and the email may go out twice."""
    return await conn.fetchrow(
        _BEGIN_ATTEMPT, event_id, kind, client_number, lease_seconds, ticket_number
    )


async def email_status(conn: Conn, event_id: uuid.UUID) -> str | None:
    return await conn.fetchval("SELECT status FROM emails WHERE event_id = $1", event_id)


async def mark_sent(conn: Conn, event_id: uuid.UUID, recipient: str) -> None:
    await conn.execute(
        """
        UPDATE emails SET status = 'sent', sent_at = now(), recipient = $2, last_error = NULL,
                          lease_until = NULL, updated_at = now()
        WHERE event_id = $1
        """,
        event_id,
        recipient,
    )


async def mark_failed(
    conn: Conn, event_id: uuid.UUID, error: str, *, recipient: str | None = None
) -> None:
    """A failed attempt that will be tried again."""
    await conn.execute(
        """
        UPDATE emails SET status = 'pending', last_error = $2, lease_until = NULL,
                          recipient = coalesce($3, recipient), updated_at = now()
        WHERE event_id = $1
        """,
        event_id,
        error[:1000],
        recipient,
    )


async def mark_dead(
    conn: Conn, event_id: uuid.UUID, error: str, *, recipient: str | None = None
) -> None:
    await conn.execute(
        """
        UPDATE emails SET status = 'dead', last_error = $2, lease_until = NULL,
                          recipient = coalesce($3, recipient), updated_at = now()
        WHERE event_id = $1
        """,
        event_id,
        error[:1000],
        recipient,
    )


async def reopen_email(conn: Conn, event_id: uuid.UUID) -> None:
    """A replayed dead email may be sent again."""
    await conn.execute(
        "UPDATE emails SET status = 'pending', updated_at = now()"
        " WHERE event_id = $1 AND status = 'dead'",
        event_id,
    )


_EMAIL_COLUMNS = """event_id, kind, ticket_number, recipient, status, attempts, last_error,
    created_at, updated_at, sent_at"""


async def emails_about_ticket(conn: Conn, ticket_number: int, limit: int) -> list[Record]:
    """The emails about one ticket, oldest first."""
    return await conn.fetch(
        f"""
        SELECT {_EMAIL_COLUMNS} FROM emails WHERE ticket_number = $1
        ORDER BY created_at, event_id LIMIT $2
        """,
        ticket_number,
        limit,
    )


async def get_email(conn: Conn, event_id: uuid.UUID, *, lock: bool = False) -> Record | None:
    suffix = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(
        f"SELECT {_EMAIL_COLUMNS} FROM emails WHERE event_id = $1{suffix}", event_id
    )


# --- dead letters ------------------------------------------------------------------------------

_DEAD_LETTER_COLUMNS = (
    "id, event_id, event_type, correlation_id, reason, created_at, replayed_at, body"
)


async def add_dead_letter(
    conn: Conn,
    *,
    event_id: uuid.UUID,
    event_type: str,
    body: bytes,
    correlation_id: str | None,
    reason: str,
) -> int | None:
    """The new entry's id, or None when this event already waits in the list."""
    return await conn.fetchval(
        """
        INSERT INTO dead_letters (event_id, event_type, body, correlation_id, reason)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (event_id) WHERE replayed_at IS NULL DO NOTHING
        RETURNING id
        """,
        event_id,
        event_type,
        body,
        correlation_id,
        reason[:1000],
    )


async def list_dead_letters(
    conn: Conn, *, include_replayed: bool, after_id: int, limit: int
) -> list[Record]:
    return await conn.fetch(
        f"""
        SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters
        WHERE ($1 OR replayed_at IS NULL) AND id > $2
        ORDER BY id LIMIT $3
        """,
        include_replayed,
        after_id,
        limit,
    )


async def get_dead_letter(conn: Conn, dead_letter_id: int, *, lock: bool = False) -> Record | None:
    suffix = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(
        f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = $1{suffix}", dead_letter_id
    )


async def waiting_dead_letter_of(conn: Conn, event_id: uuid.UUID) -> Record | None:
    """The dead letter of this event not replayed yet, locked (at most one: see the index)."""
    return await conn.fetchrow(
        f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters"
        " WHERE event_id = $1 AND replayed_at IS NULL FOR UPDATE",
        event_id,
    )


async def mark_replayed(conn: Conn, dead_letter_id: int) -> Record:
    return await conn.fetchrow(
        f"UPDATE dead_letters SET replayed_at = now() WHERE id = $1"
        f" RETURNING {_DEAD_LETTER_COLUMNS}",
        dead_letter_id,
    )


# --- inbound mail ------------------------------------------------------------------------------


async def add_inbound(
    conn: Conn,
    *,
    mail_from: str,
    ticket_number: int | None,
    message_id: str | None,
    subject: str | None,
    size: int,
    answered: bool,
    reason: str,
    client_address: str | None,
) -> int:
    return await conn.fetchval(
        """
        INSERT INTO inbound_messages
            (mail_from, ticket_number, message_id, subject, size, answered, reason, client_address)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id
        """,
        mail_from,
        ticket_number,
        message_id,
        subject,
        size,
        answered,
        reason,
        client_address,
    )


async def lock_client_address(conn: Conn, client_address: str) -> None:
    """Taken before `lock_sender`, always in that order."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('auto-reply-client:' || $1))", client_address
    )


async def recent_answers_to_client(conn: Conn, client_address: str, window_seconds: float) -> int:
    """Automatic answers to messages from this SMTP client within the window."""
    return await conn.fetchval(
        """
        SELECT count(*) FROM inbound_messages
        WHERE client_address = $1 AND answered
          AND received_at > now() - make_interval(secs => $2)
        """,
        client_address,
        window_seconds,
    )


async def lock_sender(conn: Conn, sender: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('auto-reply:' || $1))", sender)


async def recent_auto_replies(conn: Conn, sender: str, window_seconds: float) -> int:
    return await conn.fetchval(
        """
        SELECT count(*) FROM auto_replies
        WHERE sender = $1 AND sent_at > now() - make_interval(secs => $2)
        """,
        sender,
        window_seconds,
    )


async def claim_auto_reply(
    conn: Conn, sender: str, ticket_number: int, window_seconds: float
) -> bool:
    """True when no automatic answer went to this sender about this ticket within the window
    (and records this one); concurrent claims are settled by the primary key."""
    return bool(
        await conn.fetchval(
            """
            INSERT INTO auto_replies (sender, ticket_number, sent_at) VALUES ($1, $2, now())
            ON CONFLICT (sender, ticket_number) DO UPDATE SET sent_at = excluded.sent_at
                WHERE auto_replies.sent_at < now() - make_interval(secs => $3)
            RETURNING true
            """,
            sender,
            ticket_number,
            window_seconds,
        )
    )


async def purge_inbound(conn: Conn, kept_seconds: float) -> int:
    """Inbound messages and automatic answers recorded longer ago than `kept_seconds` (SPEC 9.1:
    30 days, beyond every window that counts them); the number of rows deleted."""
    deleted = 0
    for statement in (
        "DELETE FROM inbound_messages WHERE received_at < now() - make_interval(secs => $1)",
        "DELETE FROM auto_replies WHERE sent_at < now() - make_interval(secs => $1)",
    ):
        deleted += int((await conn.execute(statement, kept_seconds)).split()[-1])
    return deleted
