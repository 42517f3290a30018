"""A PostgreSQL cluster of a test run's own: `initdb` and `pg_ctl` in a temporary directory, on a
free port, with trust authentication, removed afterwards.

`make test` runs on one (tests/conftest.py), and so does each scenario of the fault suite, which
stops and crashes it. It is the machine's PostgreSQL, the same binaries, configured for tests:
fsync is off, because an operating-system crash is not a fault any test injects and the data is
thrown away; synchronous_commit stays on, so that a crash of PostgreSQL (`stop -m immediate`)
still loses no commit it acknowledged. It runs as the `postgres` OS user when we are root (the
server refuses to run as root), else as ourselves.
"""

import asyncio
import contextlib
import getpass
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import asyncpg

from deploy.processes import free_port

AS_ROOT = os.geteuid() == 0


def pg_bin() -> Path:
    """The newest installed PostgreSQL's programs (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL's initdb is missing: apt-get install postgresql")
    return found[-1].parent


def own_dir(prefix: str, user: str) -> Path:
    """A new temporary directory that `user` owns (when we are root, who may give it away)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if AS_ROOT:
        shutil.chown(path, user, user)
    path.chmod(0o755)
    return path


async def run(*args: str, timeout: float = 60) -> str:
    """`args` to completion: their output, or RuntimeError with it."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{text}")
    return text


class PrivatePostgres:
    """The cluster. Its superusers are `postgres` and the user whose name libpq puts in a URL
    without one (PGUSER, else the login name), so that the URLs of the services' defaults work
    against it as against the machine's cluster."""

    def __init__(self, prefix: str = "helpdesk-pg-") -> None:
        self.port = free_port()
        self.dir = own_dir(prefix, "postgres")
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def _pg(self, program: str, *args: str, timeout: float = 60) -> str:
        command = (str(pg_bin() / program), *args)
        if AS_ROOT:
            command = ("runuser", "-u", "postgres", "--", *command)
        return await run(*command, timeout=timeout)

    async def start(self) -> "PrivatePostgres":
        if not self.data.exists():
            await self._pg(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                "--no-sync",
            )  # fmt: skip
            first = True
        else:
            first = False
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=300"
        )
        await self._pg(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
            "start",
        )  # fmt: skip
        user = os.environ.get("PGUSER") or getpass.getuser()
        if first and user != "postgres":
            conn = await asyncpg.connect(self.dsn())
            try:
                # A name from the environment: quoted as an identifier by PostgreSQL itself.
                role = await conn.fetchval("SELECT quote_ident($1)", user)
                await conn.execute(f"CREATE ROLE {role} SUPERUSER LOGIN")
            finally:
                await conn.close()
        return self

    async def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: no shutdown checkpoint, every backend killed at once."""
        await self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    async def create_database(self, label: str) -> str:
        name = f"faults_{label}_{uuid.uuid4().hex[:6]}"
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')  # a name made here, never input
        finally:
            await conn.close()
        return self.dsn(name)

    async def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            await self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
