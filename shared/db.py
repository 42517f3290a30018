"""asyncpg pool with time limits, and numbered SQL migrations applied under an advisory lock."""

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import structlog

from shared.errors import ServiceUnavailable
from shared.retry import Backoff, retrying

log = structlog.get_logger(__name__)

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number will do: it only has to be the same for every instance of every service.
MIGRATION_LOCK_ID = 7_200_001
_MIGRATION_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")

# What a lost or unreachable database looks like to asyncpg; answered with 503, never 500.
DB_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    ConnectionError,
    OSError,
    TimeoutError,
)


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float = 5.0,
    connect_attempts: int = 30,
) -> asyncpg.Pool:
    """Open a pool, retrying while PostgreSQL is still starting (a service may start first)."""
    return await retrying(
        lambda: asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            timeout=command_timeout,
            max_inactive_connection_lifetime=60,
        ),
        retry_on=DB_UNAVAILABLE_ERRORS,
        what="db.connect",
        backoff=Backoff(first=0.2, ceiling=2.0),
        attempts=connect_attempts,
    )


@asynccontextmanager
async def acquire(pool: asyncpg.Pool, timeout: float = 3.0) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection, or 503 quickly when the database cannot give one."""
    try:
        conn = await pool.acquire(timeout=timeout)
    except DB_UNAVAILABLE_ERRORS as exc:
        raise ServiceUnavailable("The database is unavailable; try again shortly.") from exc
    try:
        yield conn
    finally:
        await pool.release(conn)


def migration_files(directory: Path) -> list[tuple[int, Path]]:
    files = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name must look like 0001_name.sql: {path.name}")
        files.append((int(match.group(1)), path))
    versions = [v for v, _ in files]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers in {directory}")
    return files


async def apply_migrations(
    conn: asyncpg.Connection, components: Sequence[tuple[str, Path]]
) -> list[str]:
    """Apply each component's numbered migrations once, in order; returns what was applied.

    The session-level advisory lock makes concurrent starts queue up here: the first instance
    migrates, the others wait and then find nothing left to do.
    """
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                component text NOT NULL,
                version integer NOT NULL,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            )
            """
        )
        for component, directory in components:
            done = {
                r["version"]
                for r in await conn.fetch(
                    "SELECT version FROM schema_migrations WHERE component = $1", component
                )
            }
            for version, path in migration_files(directory):
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text(encoding="utf-8"))
                    await conn.execute(
                        "INSERT INTO schema_migrations (component, version, name)"
                        " VALUES ($1, $2, $3)",
                        component,
                        version,
                        path.name,
                    )
                applied.append(f"{component}/{path.name}")
                log.info("db.migration_applied", component=component, migration=path.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied


async def migrate(dsn: str, service: str, directory: Path) -> list[str]:
    """Migrations of the shared tables (outbox, processed events), then the service's own, on a
    connection of their own: the pool's statement time limit is for requests, and a migration
    (or the wait for another instance's) may rightly take longer."""
    conn = await retrying(
        lambda: asyncpg.connect(dsn, timeout=10),
        retry_on=DB_UNAVAILABLE_ERRORS,
        what="db.connect",
        backoff=Backoff(first=0.2, ceiling=2.0),
        attempts=30,
    )
    try:
        return await apply_migrations(conn, [("shared", SHARED_MIGRATIONS), (service, directory)])
    finally:
        await conn.close()


async def ping(pool: asyncpg.Pool, timeout: float = 1.0) -> bool:
    try:
        async with asyncio.timeout(timeout):
            async with pool.acquire(timeout=timeout) as conn:
                await conn.fetchval("SELECT 1")
        return True
    except (*DB_UNAVAILABLE_ERRORS, asyncpg.PostgresError):
        return False


async def stored_secret(
    conn: asyncpg.Connection | asyncpg.Pool, table: str, name: str, candidate: str
) -> str:
    """The secret `name` of a service's own `table` (name, value); `candidate` is stored first
    when there is none, so the first instance to start wins and the others read what it stored."""
    await conn.execute(
        f"INSERT INTO {table} (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING", name, candidate
    )
    return await conn.fetchval(f"SELECT value FROM {table} WHERE name = $1", name)
