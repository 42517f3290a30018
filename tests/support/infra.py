"""Real PostgreSQL databases for tests, each made for the run and removed (vhosts:
deploy/rabbitmq.py)."""

import asyncio
import os
import uuid
from pathlib import Path

import asyncpg

from deploy.rabbitmq import create_vhosts, delete_vhosts, vhost_url
from shared import db

AMQP_HOST = os.environ.get("TEST_AMQP_HOST", "127.0.0.1")


def dsn_of(name: str) -> str:
    """The URL of database `name` on the tests' PostgreSQL: the run's own cluster, which
    tests/conftest.py starts and names in TEST_PG_PORT, or the server TEST_PG_HOST/PORT given.

    No user in the URL: libpq's defaults (PGUSER, else the login name; ~/.pgpass), as the
    services' default URLs have it. No TLS to the local server: asyncpg would build an SSL
    context for every connection only to hear that the server has none."""
    host = os.environ.get("TEST_PG_HOST", "127.0.0.1")
    port = os.environ.get("TEST_PG_PORT", "5432")
    return f"postgresql://{host}:{port}/{name}?sslmode=disable"


def admin_dsn() -> str:
    return dsn_of("postgres")


async def create_database(name: str, template: str | None = None) -> str:
    conn = await asyncpg.connect(admin_dsn())
    try:
        # Identifiers cannot be bound as parameters; names here are made by the tests alone.
        suffix = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    finally:
        await conn.close()
    return dsn_of(name)


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(admin_dsn())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class DatabaseFactory:
    """Fresh, migrated databases: each service's migrations run once into a template, and each
    test gets a copy of it (CREATE DATABASE ... TEMPLATE is far faster than migrating again).

    `for_test()` gives a test a factory of its own over the same templates. Its databases are
    dropped in batches in the background once the test ends (`drop_later`), so that a run does
    not spend its last minute dropping hundreds of them: each DROP DATABASE waits for a
    checkpoint, which drops running together share, while one at a time each waits for its own.
    `drop_all()` drops the rest, unless the cluster itself is thrown away, and waits for every
    batch."""

    BATCH = 12

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._templates: dict[str, str] = {}
        self._made: list[str] = []
        self._lock = asyncio.Lock()
        # Not more at once: the cluster's max_connections is shared with the tests' own pools.
        self._drops = asyncio.Semaphore(4)
        self._background: list[asyncio.Task[None]] = []
        self._pending: list[str] = []
        self._parent: DatabaseFactory | None = None

    def for_test(self) -> "DatabaseFactory":
        child = DatabaseFactory(self.run_id)
        child._templates, child._lock, child._drops = self._templates, self._lock, self._drops
        child._parent = self
        return child

    async def template(self, service: str, migrations: Path) -> str:
        async with self._lock:
            if service not in self._templates:
                name = f"t_{self.run_id}_{service}_tmpl"
                dsn = await create_database(name)
                # Made for the whole run: the run's own factory drops it.
                (self._parent or self)._made.append(name)
                conn = await asyncpg.connect(dsn)
                try:
                    await db.apply_migrations(
                        conn, [("shared", db.SHARED_MIGRATIONS), (service, migrations)]
                    )
                finally:
                    await conn.close()
                self._templates[service] = name
            return self._templates[service]

    async def migrated(self, service: str, migrations: Path) -> str:
        template = await self.template(service, migrations)
        return await self.empty(service, template=template)

    async def empty(self, label: str, template: str | None = None) -> str:
        name = f"t_{self.run_id}_{label}_{uuid.uuid4().hex[:8]}"
        self._made.append(name)
        return await create_database(name, template)

    def drop_later(self) -> None:
        """Leave this test's databases to the run's factory, which drops them with the next
        batch."""
        run = self._parent
        assert run is not None, "only a test's factory drops later"
        run._pending += self._made
        if len(run._pending) >= self.BATCH:
            run._background.append(asyncio.create_task(run._drop(run._pending)))
            run._pending = []

    async def drop_all(self) -> None:
        await asyncio.gather(*self._background)
        if os.environ.get("TEST_PG_THROWAWAY") == "1":
            return  # the run's own cluster, removed whole at the end (tests/conftest.py)
        # The run is over for this process, its pools closed: the rest go a batch at a time, each
        # batch sharing one checkpoint, rather than four at a time at the end of the run.
        await self._drop(self._pending + self._made[::-1], asyncio.Semaphore(self.BATCH))

    async def _drop(self, names: list[str], at_once: asyncio.Semaphore | None = None) -> None:
        limit = at_once or self._drops

        async def drop(name: str) -> None:
            async with limit:
                await drop_database(name)

        await asyncio.gather(*(drop(name) for name in names))


async def drop_stale_databases(hours: float = 3.0) -> None:
    """Databases that killed test runs left behind (they never reached their clean-up)."""
    conn = await asyncpg.connect(admin_dsn())
    try:
        names = await conn.fetch(
            """
            SELECT datname FROM pg_database
            WHERE datname LIKE 't\\_%'
              -- missing_ok: another run may be dropping one of them right now.
              AND (pg_stat_file('base/' || oid || '/PG_VERSION', true))
                .modification < now() - make_interval(secs => $1)
            """,
            hours * 3600,
        )
    finally:
        await conn.close()
    for row in names:
        await drop_database(row["datname"])


class Cleanups:
    """Clean-ups that run in the background while the next tests run; `wait()` at the end of the
    run raises what failed. Vhosts are deleted a batch at a time: each rabbitmqctl call starts an
    Erlang VM, half a second of CPU."""

    VHOST_BATCH = 6

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []
        self._vhosts: list[str] = []

    def delete_vhost(self, name: str) -> None:
        self._vhosts.append(name)
        if len(self._vhosts) >= self.VHOST_BATCH:
            self._delete_vhosts()

    def _delete_vhosts(self) -> None:
        names, self._vhosts = self._vhosts, []
        self._tasks.append(asyncio.create_task(asyncio.to_thread(delete_vhosts, names)))

    def drop_owned_databases(self, names: list[str], *, user: str) -> None:
        """Databases made outside a DatabaseFactory, each owned by a role of its name, dropped
        with their roles as `user`. Each DROP DATABASE waits for a checkpoint, which takes seconds
        while the suite writes: done here, together, they share one and hold up no test."""
        self._tasks.append(asyncio.create_task(self._drop_owned_databases(names, user)))

    async def _drop_owned_databases(self, names: list[str], user: str) -> None:
        async def drop(name: str) -> None:
            conn = await asyncpg.connect(admin_dsn(), user=user)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.execute(f'DROP ROLE IF EXISTS "{name}"')  # its database gone first
            finally:
                await conn.close()

        await asyncio.gather(*(drop(name) for name in names))

    async def wait(self) -> None:
        if self._vhosts:
            self._delete_vhosts()
        await asyncio.gather(*self._tasks)


class Vhosts:
    """Fresh RabbitMQ vhosts for the tests that need one of their own, made a batch at a time:
    each rabbitmqctl call starts an Erlang VM (half a second of CPU, more on a busy machine),
    and one call makes a batch in hardly more time than one vhost. A vhost is never handed out
    twice; each is deleted in the background once its test is done with it."""

    BATCH = 6

    def __init__(self, run_id: str, cleanups: Cleanups) -> None:
        self.run_id = run_id
        self._cleanups = cleanups
        self._made = 0
        self._unused: list[str] = []
        self._lock = asyncio.Lock()

    async def take(self) -> tuple[str, str]:
        """A new vhost: (name, AMQP URL)."""
        async with self._lock:
            if not self._unused:
                first, self._made = self._made, self._made + self.BATCH
                names = [f"test-{self.run_id}-{i}" for i in range(first, self._made)]
                await asyncio.to_thread(create_vhosts, names)
                self._unused = names[::-1]
            name = self._unused.pop()
        return name, vhost_url(name, AMQP_HOST)

    def give_back(self, name: str) -> None:
        """Done with: deleted in the background."""
        self._cleanups.delete_vhost(name)

    def close(self) -> None:
        for name in self._unused:
            self._cleanups.delete_vhost(name)
        self._unused = []
