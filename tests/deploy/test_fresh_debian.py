"""The README's two commands on a machine as Debian 12 leaves it, not as this project's machines
are prepared: PostgreSQL asking for a password over TCP with no role for the user, and Python
without `python3.11-venv`. The set-up scripts of `make run` and `make test` are run against a
throwaway PostgreSQL cluster made the Debian way (`pg_createcluster` defaults), so that CI cannot
hide a first-day failure again."""

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from deploy.processes import free_port
from shared import db

ROOT = Path(__file__).resolve().parents[2]
TICKETS_MIGRATIONS = ROOT / "services" / "tickets" / "migrations"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="makes a PostgreSQL cluster and installs packages: CI runs as root"
)


def run(args: list[str], env: dict[str, str], **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False, **kw
    )


@pytest.fixture
def debian_cluster() -> Iterator[tuple[int, Path]]:
    """A PostgreSQL cluster as `apt-get install postgresql` makes one (scram-sha-256 over TCP,
    peer on the socket, no role but postgres), on a port of its own: (port, its pg_hba.conf);
    dropped afterwards."""
    if not shutil.which("pg_createcluster"):
        pytest.fail("pg_createcluster is missing: apt-get install postgresql-common")
    version = sorted(os.listdir("/etc/postgresql"), key=float)[-1]
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    port = free_port()
    made = run(["pg_createcluster", version, name, "-p", str(port), "--start"], dict(os.environ))
    assert made.returncode == 0, made.stderr
    try:
        yield port, Path("/etc/postgresql") / version / name / "pg_hba.conf"
    finally:
        run(["pg_dropcluster", "--stop", version, name], dict(os.environ))


@needs_root
async def test_make_run_and_make_test_set_up_postgresql_as_debian_installs_it(
    debian_cluster: tuple[int, Path], tmp_path: Path
) -> None:
    port, hba = debian_cluster
    hba_before = hba.read_text()
    assert "scram-sha-256" in hba_before
    home = tmp_path / "home"
    home.mkdir()
    env = os.environ | {"PGPORT": str(port), "HOME": str(home)}
    env.pop("PGPASSFILE", None)
    refused = run(["psql", "-h", "127.0.0.1", "-d", "postgres", "-c", "select 1"], env)
    assert refused.returncode != 0  # what a fresh machine answers the suite's default URLs

    first = run(["deploy/ensure-services.sh"], env)
    assert first.returncode == 0, first.stderr
    assert "made the PostgreSQL role" in first.stdout
    pgpass = home / ".pgpass"
    assert pgpass.stat().st_mode & 0o777 == 0o600
    # Run again (as after an interrupted first run): nothing more to do.
    again = run(["deploy/ensure-services.sh"], env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    # pg_hba.conf was not touched: the password is what lets the user in.
    assert hba.read_text() == hba_before

    # make run: its databases, and a service migrating one with its default-style URL.
    made = run(["deploy/create-databases.sh"], env)
    assert made.returncode == 0, made.stderr
    tickets_url = f"postgresql://127.0.0.1:{port}/helpdesk_tickets"
    conn = await asyncpg.connect(tickets_url, passfile=str(pgpass))
    await conn.close()
    os.environ["PGPASSFILE"] = str(pgpass)
    try:
        applied = await db.migrate(tickets_url, "tickets", TICKETS_MIGRATIONS)
        assert "tickets/0001_tickets.sql" in applied
        # make test: a database of the run's own, made and removed by the same user.
        admin = await asyncpg.connect(f"postgresql://127.0.0.1:{port}/postgres")
        try:
            await admin.execute('CREATE DATABASE "t_fresh" TEMPLATE "helpdesk_tickets"')
            await admin.execute('DROP DATABASE "t_fresh" WITH (FORCE)')
        finally:
            await admin.close()
    finally:
        del os.environ["PGPASSFILE"]


FAKE_PYTHON = """#!/bin/sh
# Python as Debian has it before python3.11-venv: `-m venv` leaves a venv without pip and fails.
if [ "$1 $2" = "-m venv" ] && [ ! -e "{marker}" ]; then
  mkdir -p "$3/bin" && ln -sf "{python}" "$3/bin/python"
  echo "The virtual environment was not created successfully because ensurepip is not" >&2
  echo "available.  On Debian/Ubuntu systems, you need to install the python3-venv" >&2
  exit 1
fi
exec "{python}" "$@"
"""

FAKE_APT_GET = """#!/bin/sh
echo "$@" >> "{log}"
case "$*" in *python3.11-venv*) touch "{marker}" ;; esac
"""


@needs_root
@pytest.mark.slow
def test_the_venv_is_made_after_installing_python3_venv_and_again_after_a_failure(
    tmp_path: Path,
) -> None:
    fakes = tmp_path / "bin"
    fakes.mkdir()
    marker, log = tmp_path / "venv-installed", tmp_path / "apt.log"
    python = fakes / "python3.11"
    python.write_text(FAKE_PYTHON.format(marker=marker, python=sys.executable))
    apt_get = fakes / "apt-get"
    apt_get.write_text(FAKE_APT_GET.format(marker=marker, log=log))
    for script in (python, apt_get):
        script.chmod(0o755)
    env = os.environ | {"PATH": f"{fakes}:{os.environ['PATH']}"}
    venv = tmp_path / "venv"

    # A venv left half-made (no pip) by an earlier failed run is made again, with the package.
    (venv / "bin").mkdir(parents=True)
    result = run(["deploy/ensure-venv.sh", str(python), str(venv)], env)
    assert result.returncode == 0, result.stderr
    assert (venv / "bin" / "pip").exists()
    assert "install -y -qq python3.11-venv" in log.read_text()
    # A second run finds it made.
    assert run(["deploy/ensure-venv.sh", str(python), str(venv)], env).returncode == 0
