"""All of auth's SQL, and only SQL."""

import json
import uuid
from datetime import datetime

import asyncpg

from services.auth.tokens import SigningKey

Conn = asyncpg.Connection
Record = asyncpg.Record

# --- clients -----------------------------------------------------------------------------------


async def insert_client(
    conn: Conn, *, name: str, email: str, language: str, password_hash: str | None
) -> Record:
    return await conn.fetchrow(
        """
        INSERT INTO clients (name, email, language, password_hash) VALUES ($1, $2, $3, $4)
        RETURNING client_number, name, email, language, created_at
        """,
        name,
        email,
        language,
        password_hash,
    )


async def insert_service(conn: Conn, client_number: int, name: str) -> Record:
    return await conn.fetchrow(
        "INSERT INTO client_services (client_number, name) VALUES ($1, $2) RETURNING id, name",
        client_number,
        name,
    )


async def client_services(conn: Conn, client_number: int) -> list[Record]:
    return await conn.fetch(
        "SELECT id, name FROM client_services WHERE client_number = $1 ORDER BY id",
        client_number,
    )


async def get_client(conn: Conn, client_number: int, *, for_update: bool = False) -> Record | None:
    query = """
        SELECT client_number, name, email, language, password_hash, disabled, created_at
        FROM clients WHERE client_number = $1
    """
    return await conn.fetchrow(query + (" FOR UPDATE" if for_update else ""), client_number)


async def clients_by_email(conn: Conn, email: str) -> list[Record]:
    return await conn.fetch(
        """
        SELECT client_number, name, email, language, disabled FROM clients
        WHERE lower(email) = lower($1) ORDER BY client_number
        """,
        email,
    )


async def update_client_profile(
    conn: Conn, client_number: int, *, email: str | None, language: str | None
) -> None:
    await conn.execute(
        """
        UPDATE clients SET email = coalesce($2, email), language = coalesce($3, language),
                           updated_at = now()
        WHERE client_number = $1
        """,
        client_number,
        email,
        language,
    )


_ACCOUNT_TABLES = {"client": ("clients", "client_number"), "operator": ("operators", "id")}


async def time_zone_of(conn: Conn, kind: str, account_id: int) -> str | None:
    table, key = _ACCOUNT_TABLES[kind]
    return await conn.fetchval(f"SELECT time_zone FROM {table} WHERE {key} = $1", account_id)


async def set_time_zone(conn: Conn, kind: str, account_id: int, time_zone: str) -> None:
    table, key = _ACCOUNT_TABLES[kind]
    await conn.execute(
        f"UPDATE {table} SET time_zone = $2 WHERE {key} = $1",
        account_id,
        time_zone,
    )


async def search_clients(
    conn: Conn, *, q: str | None, after: int | None, limit: int
) -> list[Record]:
    """Clients by number, oldest first, after the client number `after`; `q` matches the
    number exactly, or a part of the name or the email (any case)."""
    pattern = None
    if q is not None:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    number = int(q) if q is not None and q.isascii() and q.isdigit() and len(q) <= 18 else None
    return await conn.fetch(
        """
        SELECT client_number, name, email, language, disabled, created_at FROM clients
        WHERE ($1::bigint IS NULL OR client_number > $1)
          AND ($2::text IS NULL OR client_number = $3 OR name ILIKE $2 OR email ILIKE $2)
        ORDER BY client_number LIMIT $4
        """,
        after,
        pattern,
        number,
        limit,
    )


async def services_of_clients(conn: Conn, numbers: list[int]) -> list[Record]:
    return await conn.fetch(
        """
        SELECT client_number, id, name FROM client_services
        WHERE client_number = ANY($1::bigint[]) ORDER BY client_number, id
        """,
        numbers,
    )


async def update_client(
    conn: Conn,
    client_number: int,
    *,
    name: str | None,
    email: str | None,
    language: str | None,
    disabled: bool | None,
) -> None:
    """Each given field replaces the stored one."""
    await conn.execute(
        """
        UPDATE clients SET name = coalesce($2, name), email = coalesce($3, email),
                           language = coalesce($4, language), disabled = coalesce($5, disabled),
                           updated_at = now()
        WHERE client_number = $1
        """,
        client_number,
        name,
        email,
        language,
        disabled,
    )


async def set_client_password(conn: Conn, client_number: int, password_hash: str) -> None:
    await conn.execute(
        "UPDATE clients SET password_hash = $2, updated_at = now() WHERE client_number = $1",
        client_number,
        password_hash,
    )


# --- operators ---------------------------------------------------------------------------------


async def insert_operator(
    conn: Conn, *, email: str, name: str, role: str, password_hash: str
) -> Record | None:
    """None when an operator with this email (case-insensitive) exists."""
    return await conn.fetchrow(
        """
        INSERT INTO operators (email, name, role, password_hash) VALUES ($1, $2, $3, $4)
        ON CONFLICT (lower(email)) DO NOTHING
        RETURNING id, email, name, role, language, disabled
        """,
        email,
        name,
        role,
        password_hash,
    )


async def get_operator(conn: Conn, operator_id: int, *, for_update: bool = False) -> Record | None:
    query = """
        SELECT id, email, name, role, language, password_hash, disabled FROM operators
        WHERE id = $1
    """
    return await conn.fetchrow(query + (" FOR UPDATE" if for_update else ""), operator_id)


async def get_operator_by_email(conn: Conn, email: str) -> Record | None:
    return await conn.fetchrow(
        """
        SELECT id, email, name, role, language, password_hash, disabled FROM operators
        WHERE lower(email) = lower($1)
        """,
        email,
    )


async def list_operators(conn: Conn, *, after: int | None, limit: int) -> list[Record]:
    return await conn.fetch(
        """
        SELECT id, email, name, role, language, disabled FROM operators
        WHERE $1::bigint IS NULL OR id > $1 ORDER BY id LIMIT $2
        """,
        after,
        limit,
    )


async def update_operator(
    conn: Conn, operator_id: int, *, name: str | None, role: str | None, disabled: bool | None
) -> Record:
    return await conn.fetchrow(
        """
        UPDATE operators SET name = coalesce($2, name), role = coalesce($3, role),
                             disabled = coalesce($4, disabled)
        WHERE id = $1 RETURNING id, email, name, role, language, disabled
        """,
        operator_id,
        name,
        role,
        disabled,
    )


async def lock_admins(conn: Conn) -> None:
    """Serialise the changes that may take away an admin, so that two at once cannot leave
    none (each would count the other's admin as still there)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('auth:admins'))")


async def active_admins(conn: Conn) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM operators WHERE role = 'admin' AND NOT disabled"
    )


async def set_operator_password(conn: Conn, operator_id: int, password_hash: str) -> None:
    await conn.execute(
        "UPDATE operators SET password_hash = $2 WHERE id = $1", operator_id, password_hash
    )


# --- login throttling --------------------------------------------------------------------------


async def throttled_until(
    conn: Conn, username: str, address: str | None, window: int, n: int
) -> datetime | None:
    """With `n` or more failures of `username` in the window (from `address`, or from anywhere
    when None): when their count drops below `n`; else None."""
    return await conn.fetchval(
        """
        SELECT failed_at + make_interval(secs => $2) FROM login_failures
        WHERE username = $1 AND ($4::text IS NULL OR address = $4)
          AND failed_at > now() - make_interval(secs => $2)
        ORDER BY failed_at DESC OFFSET $3 - 1 LIMIT 1
        """,
        username,
        window,
        n,
        address,
    )


async def address_throttled_until(conn: Conn, address: str, window: int, n: int) -> datetime | None:
    """With settled failures for `n` or more usernames from `address` in the window: when
    fewer than `n` usernames remain; else None."""
    return await conn.fetchval(
        """
        SELECT max(failed_at) + make_interval(secs => $2) AS until FROM login_failures
        WHERE address = $1 AND failed_at > now() - make_interval(secs => $2)
          -- an attempt still being checked is no failure yet, unless a crash left it so
          AND (settled OR failed_at < now() - interval '1 minute')
        GROUP BY username ORDER BY until DESC OFFSET $3 - 1 LIMIT 1
        """,
        address,
        window,
        n,
    )


async def record_attempt(conn: Conn, username: str, address: str, keep: int) -> int:
    """An attempt counted as a failure while its password is checked (not settled yet); its id.
    Failures older than `keep` seconds (the longest window) are deleted."""
    attempt = await conn.fetchval(
        "INSERT INTO login_failures (username, address, settled) VALUES ($1, $2, false)"
        " RETURNING id",
        username,
        address,
    )
    await conn.execute(
        "DELETE FROM login_failures WHERE failed_at < now() - make_interval(secs => $1)", keep
    )
    return attempt


async def settle_failure(conn: Conn, attempt: int) -> None:
    """The attempt's password was wrong: a failure for every limit."""
    await conn.execute("UPDATE login_failures SET settled = true WHERE id = $1", attempt)


async def clear_failures(conn: Conn, username: str, address: str | None = None) -> None:
    """The failures of `username` from `address` (from everywhere when None)."""
    await conn.execute(
        "DELETE FROM login_failures WHERE username = $1 AND ($2::text IS NULL OR address = $2)",
        username,
        address,
    )


async def lock_login(conn: Conn, username: str, address: str) -> None:
    """Serialise logins of one username and of one address, so that concurrent guesses cannot
    pass the throttle. Always username first, then address: no two logins wait on each other."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('login:' || $1))", username)
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('login-from:' || $1))", address)


# --- password recovery requests ----------------------------------------------------------------


async def insert_recovery_request(conn: Conn, email: str) -> None:
    await conn.execute("INSERT INTO recovery_requests (email) VALUES ($1)", email)


async def claim_recovery_requests(conn: Conn, limit: int) -> list[str]:
    """The emails of up to `limit` waiting requests, deleted (with the transaction's commit);
    rows another instance is working on are skipped."""
    rows = await conn.fetch(
        """
        DELETE FROM recovery_requests WHERE id IN (
            SELECT id FROM recovery_requests ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
        ) RETURNING email
        """,
        limit,
    )
    return [row["email"] for row in rows]


# --- refresh tokens ----------------------------------------------------------------------------


async def insert_refresh_token(
    conn: Conn, *, token_hash: bytes, family_id: uuid.UUID, subject: str, ttl: int
) -> None:
    await conn.execute(
        """
        INSERT INTO refresh_tokens (token_hash, family_id, subject, expires_at)
        VALUES ($1, $2, $3, now() + make_interval(secs => $4))
        """,
        token_hash,
        family_id,
        subject,
        ttl,
    )


async def claim_refresh_token(conn: Conn, token_hash: bytes) -> Record | None:
    """The token row, locked; `expired` tells whether its life is over."""
    return await conn.fetchrow(
        """
        SELECT family_id, subject, used_at, revoked_at, expires_at <= now() AS expired
        FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE
        """,
        token_hash,
    )


async def mark_refresh_used(conn: Conn, token_hash: bytes) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1", token_hash
    )


async def revoke_family(conn: Conn, family_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
    )


async def revoke_subject(conn: Conn, subject: str) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE subject = $1 AND revoked_at IS NULL",
        subject,
    )


# --- one-time password tokens ------------------------------------------------------------------


async def insert_password_token(
    conn: Conn, *, token_hash: bytes, client_number: int, purpose: str, ttl: int
) -> None:
    await conn.execute(
        """
        INSERT INTO password_tokens (token_hash, client_number, purpose, expires_at)
        VALUES ($1, $2, $3, now() + make_interval(secs => $4))
        """,
        token_hash,
        client_number,
        purpose,
        ttl,
    )


async def peek_password_token(conn: Conn, token_hash: bytes) -> Record | None:
    """The client of a usable token (unused, unexpired), without using it up."""
    return await conn.fetchrow(
        """
        SELECT c.client_number, c.email FROM password_tokens t
        JOIN clients c USING (client_number)
        WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > now()
        """,
        token_hash,
    )


async def recent_reset_links(conn: Conn, client_number: int, window: int) -> int:
    return await conn.fetchval(
        """
        SELECT count(*) FROM password_tokens
        WHERE client_number = $1 AND purpose = 'reset'
          AND created_at > now() - make_interval(secs => $2)
        """,
        client_number,
        window,
    )


async def claim_password_token(conn: Conn, token_hash: bytes) -> Record | None:
    """The client of a token that is unused and unexpired, marking it used; else None."""
    return await conn.fetchrow(
        """
        UPDATE password_tokens SET used_at = now()
        WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
        RETURNING client_number
        """,
        token_hash,
    )


async def expire_password_tokens(conn: Conn, client_number: int) -> None:
    """A password was set: every other outstanding link of this client stops working."""
    await conn.execute(
        "UPDATE password_tokens SET used_at = now() WHERE client_number = $1 AND used_at IS NULL",
        client_number,
    )


# --- email changes -----------------------------------------------------------------------------


async def insert_email_change(
    conn: Conn, *, token_hash: bytes, client_number: int, new_email: str, ttl: int
) -> None:
    await conn.execute(
        """
        INSERT INTO email_changes (token_hash, client_number, new_email, expires_at)
        VALUES ($1, $2, $3, now() + make_interval(secs => $4))
        """,
        token_hash,
        client_number,
        new_email,
        ttl,
    )


async def claim_email_change(conn: Conn, token_hash: bytes) -> Record | None:
    """The client and new email of a token that is unused and unexpired, marking it used."""
    return await conn.fetchrow(
        """
        UPDATE email_changes SET used_at = now()
        WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
        RETURNING client_number, new_email
        """,
        token_hash,
    )


async def recent_email_changes(conn: Conn, client_number: int, seconds: int) -> Record:
    """`count` of the client's email changes asked for in the last `seconds`, and when the
    `oldest` of them was (retention keeps every row at least a day)."""
    return await conn.fetchrow(
        """
        SELECT count(*) AS count, min(created_at) AS oldest FROM email_changes
        WHERE client_number = $1 AND created_at > now() - make_interval(secs => $2)
        """,
        client_number,
        seconds,
    )


async def expire_email_changes(conn: Conn, client_number: int) -> None:
    """The email changed: every other outstanding confirmation link stops working."""
    await conn.execute(
        "UPDATE email_changes SET used_at = now() WHERE client_number = $1 AND used_at IS NULL",
        client_number,
    )


# --- signing keys ------------------------------------------------------------------------------


async def lock_signing_keys(conn: Conn) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('auth:signing-keys'))")


async def current_signing_key(conn: Conn) -> Record | None:
    return await conn.fetchrow(
        """
        SELECT kid, private_pem, public_jwk::text AS public_jwk FROM signing_keys
        WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1
        """
    )


async def verifying_keys(conn: Conn, grace: int) -> list[Record]:
    """Keys still verifying: unretired, or retired less than `grace` seconds ago."""
    return await conn.fetch(
        """
        SELECT kid, public_jwk::text AS public_jwk FROM signing_keys
        WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)
        ORDER BY created_at
        """,
        grace,
    )


async def insert_signing_key(conn: Conn, key: SigningKey) -> None:
    await conn.execute(
        """
        INSERT INTO signing_keys (kid, private_pem, public_jwk) VALUES ($1, $2, $3::jsonb)
        ON CONFLICT (kid) DO UPDATE SET retired_at = NULL
        """,
        key.kid,
        key.private_pem,
        json.dumps(key.public_jwk),
    )


async def retire_keys_except(conn: Conn, kid: str) -> None:
    await conn.execute(
        "UPDATE signing_keys SET retired_at = now() WHERE kid <> $1 AND retired_at IS NULL", kid
    )


# --- retention (SPEC 9.1) ----------------------------------------------------------------------

# Spent or expired one-time tokens and the refresh tokens no request can use any more, a day
# after that; login failures once out of the longest window. Revoked or spent refresh tokens of
# a live login stay until it expires: reusing one must still revoke the login.
_PURGES = (
    """DELETE FROM password_tokens
       WHERE least(coalesce(used_at, 'infinity'), expires_at)
             < now() - make_interval(secs => $1)""",
    """DELETE FROM email_changes
       WHERE least(coalesce(used_at, 'infinity'), expires_at)
             < now() - make_interval(secs => $1)""",
    """DELETE FROM refresh_tokens
       WHERE least(coalesce(revoked_at, 'infinity'), expires_at)
             < now() - make_interval(secs => $1)""",
)


async def purge_spent(conn: Conn, spent_kept: int, failures_kept: int) -> int:
    """Deletes what retention allows; the number of rows deleted."""
    deleted = 0
    for statement in _PURGES:
        deleted += int((await conn.execute(statement, spent_kept)).split()[-1])
    result = await conn.execute(
        "DELETE FROM login_failures WHERE failed_at < now() - make_interval(secs => $1)",
        failures_kept,
    )
    return deleted + int(result.split()[-1])
