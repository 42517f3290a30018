"""The demo's compose file, checked where no Docker engine runs (Debian's docker-compose validates
it against the Compose specification offline), its database set-up run against the tests'
PostgreSQL, the deploy scripts under shellcheck, and the Procfile of `make run`. The gateway, the
image and the Kubernetes manifests have modules of their own."""

import os
import re
import subprocess
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.support import DEPLOY, ROOT, SERVICES, program
from tests.support.infra import Cleanups

WITH_BROKER = ("auth", "tickets", "notifier")
PORTS = {"auth": 8081, "tickets": 8082, "notifier": 8083, "panel": 8080}


def compose_config(env: dict[str, str] | None = None) -> dict[str, Any]:
    docker_compose = program("docker-compose", "`make test` installs it (Debian package)")
    result = subprocess.run(
        [docker_compose, "-f", "docker-compose.yml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return compose_config()["services"]


def test_compose_file_is_valid_and_runs_the_whole_suite(services: dict[str, Any]) -> None:
    assert {"postgres", "rabbitmq", "mailpit", "gateway", *SERVICES} <= set(services)
    assert "management" in services["rabbitmq"]["image"]
    for name in SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["command"] == ["python", "-m", f"services.{name}"]
        check = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{PORTS[name]}/readyz" in check
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
    for name in WITH_BROKER:
        assert services[name]["environment"]["HELPDESK_AMQP_URL"].startswith("amqp://")
    assert services["notifier"]["environment"]["NOTIFIER_SMTP_HOST"] == "mailpit"


def test_the_compose_file_says_it_is_a_demo() -> None:
    head = (ROOT / "docker-compose.yml").read_text().split("\n\n", 1)[0]
    assert "DEMO" in head and "docs/deploying.md" in head


def test_each_service_sees_only_its_own_database_and_role(services: dict[str, Any]) -> None:
    for name in SERVICES:
        environment = services[name]["environment"]
        urls = {k: v for k, v in environment.items() if k.endswith("_DATABASE_URL")}
        assert set(urls) == {f"{name.upper()}_DATABASE_URL"}, name
        url = urlsplit(urls[f"{name.upper()}_DATABASE_URL"])
        assert (url.username, url.path) == (f"helpdesk_{name}", f"/helpdesk_{name}")
        assert ("HELPDESK_AMQP_URL" in environment) == (name in WITH_BROKER)


def test_the_database_passwords_come_from_the_environment() -> None:
    env = {"TICKETS_DB_PASSWORD": "t-from-env", "RABBITMQ_PASSWORD": "r-from-env"}
    services = compose_config(env)["services"]
    assert ":t-from-env@" in services["tickets"]["environment"]["TICKETS_DATABASE_URL"]
    assert services["postgres"]["environment"]["TICKETS_DB_PASSWORD"] == "t-from-env"
    assert ":r-from-env@" in services["auth"]["environment"]["HELPDESK_AMQP_URL"]
    assert services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"] == "r-from-env"


def test_rabbitmq_has_no_guest_login_and_the_consoles_stay_local(services: dict[str, Any]) -> None:
    rabbitmq = services["rabbitmq"]
    assert rabbitmq["environment"]["RABBITMQ_DEFAULT_USER"] != "guest"
    for name in SERVICES:
        assert "guest" not in services[name]["environment"].get("HELPDESK_AMQP_URL", "")
    for name in ("rabbitmq", "mailpit"):
        for port in services[name]["ports"]:
            assert host_ip(port) == "127.0.0.1", (name, port)


def host_ip(port: str | dict[str, Any]) -> str | None:
    """docker-compose config writes a port as "ip:published:target/proto" or as a mapping."""
    if isinstance(port, dict):
        return port.get("host_ip")
    parts = port.split(":")
    return parts[0] if len(parts) == 3 else None


def target(port: str | dict[str, Any]) -> int:
    if isinstance(port, dict):
        return int(port["target"])
    return int(port.split(":")[-1].split("/")[0])


def test_the_gateway_is_the_public_entry(services: dict[str, Any]) -> None:
    gateway = services["gateway"]
    assert [target(p) for p in gateway["ports"]] == [80]
    sources = [v["source"] if isinstance(v, dict) else v.split(":")[0] for v in gateway["volumes"]]
    assert any(source.endswith("deploy/nginx.conf") for source in sources)
    for name in ("auth", "tickets", "panel"):
        assert "ports" not in services[name], f"{name} is reached through the gateway only"


async def test_the_init_script_makes_one_role_per_service_that_reaches_only_its_database(
    cleanups: Cleanups,
) -> None:
    """deploy/postgres-init.sql, run as the postgres image runs it (psql, as the superuser) on the
    tests' PostgreSQL, with its names prefixed so that it touches nothing else."""
    psql = program("psql", "install the Debian package postgresql-client (15 or newer)")
    prefix = f"t_{uuid.uuid4().hex[:8]}_"
    sql = (DEPLOY / "postgres-init.sql").read_text().replace("helpdesk_", prefix)
    host = os.environ.get("TEST_PG_HOST", "127.0.0.1")
    port = os.environ.get("TEST_PG_PORT", "5432")
    passwords = {f"{name.upper()}_DB_PASSWORD": f"{name}-pw'!" for name in SERVICES}
    base = {**os.environ, "PGHOST": host, "PGPORT": port, "PGCONNECT_TIMEOUT": "5"}

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [psql, "-X", "-v", "ON_ERROR_STOP=1", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
            env={**base, **env},
        )

    def admin(sql: str) -> subprocess.CompletedProcess:
        return run("-U", "postgres", "-d", "postgres", "-Atc", sql)

    try:
        made = subprocess.run(
            [psql, "-X", "-q", "-U", "postgres", "-d", "postgres"],
            input=sql,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**base, **passwords},
        )
        assert made.returncode == 0, made.stderr
        for name in SERVICES:
            role, password = prefix + name, passwords[f"{name.upper()}_DB_PASSWORD"]
            own = run("-U", role, "-d", role, "-Atc", "SELECT current_user", PGPASSWORD=password)
            assert own.returncode == 0 and own.stdout.strip() == role, own.stderr
            other = prefix + next(s for s in SERVICES if s != name)
            foreign = run("-U", role, "-d", other, "-Atc", "SELECT 1", PGPASSWORD=password)
            assert foreign.returncode != 0 and "CONNECT" in foreign.stderr, foreign.stderr
        owner = admin(
            "SELECT datname, pg_get_userbyid(datdba) FROM pg_database"
            f" WHERE datname LIKE '{prefix}%'"
        )
        assert sorted(owner.stdout.split()) == sorted(f"{prefix}{n}|{prefix}{n}" for n in SERVICES)
    finally:
        cleanups.drop_owned_databases([prefix + name for name in SERVICES], user="postgres")


@pytest.mark.parametrize("script", sorted(p.name for p in DEPLOY.glob("*.sh")))
def test_deploy_scripts_pass_shellcheck(script: str) -> None:
    shellcheck = program(
        "shellcheck", "`make test` installs it (Debian package shellcheck, /usr/bin/shellcheck)"
    )
    result = subprocess.run(
        [shellcheck, "--severity=warning", str(DEPLOY / script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_make_run_starts_the_four_services_and_the_mail_sink() -> None:
    procfile = (DEPLOY / "Procfile").read_text().splitlines()
    commands = dict(line.split(": ", 1) for line in procfile if line.strip())
    for name in SERVICES:
        assert commands[name] == f".venv/bin/python -m services.{name}"
    assert "deploy.mailsink" in commands["mailsink"]


def test_the_docs_give_the_commands_that_exist() -> None:
    """docs/deploying.md names files of the repository; each must be there."""
    text = (ROOT / "docs" / "deploying.md").read_text()
    for path in set(re.findall(r"`((?:deploy|docs|tests)/[\w./-]+)`", text)):
        assert (ROOT / path.rstrip(".")).exists(), path
