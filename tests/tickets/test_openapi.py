"""Schemathesis against the running tickets' own OpenAPI document, as a client and as an admin:
no 5xx, and every answer (status, content type, body) is one the document allows."""

import asyncio
import os
import sys
from pathlib import Path

from tests.support.waiting import wait_for
from tests.tickets.procs import CHEAP_ARGON2, ServiceProcess, auth_command, base_env

ST = Path(sys.executable).with_name("st")
ADMIN_EMAIL = "fuzz-admin@helpdesk.example"
ADMIN_PASSWORD = "a fuzzing admin passphrase"
CLIENT_PASSWORD = "a fuzzing client passphrase"
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


async def run_schemathesis(base_url: str, token: str, workdir: Path) -> tuple[int, str]:
    workdir.mkdir()
    proc = await asyncio.create_subprocess_exec(
        str(ST),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        "30",
        "--max-time",
        "30",
        "--workers",
        "2",
        "--seed",
        "20261125",
        "--request-timeout",
        "10",
        "-H",
        f"Authorization: Bearer {token}",
        "--report-dir",
        str(workdir / "report"),
        cwd=workdir,
        env=os.environ | {"NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -1, "schemathesis timed out\n" + out.decode(errors="replace")
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    databases, amqp_url, tmp_path
):
    auth_env = base_env(amqp_url, AUTH_DATABASE_URL=await databases.empty("auth"), **CHEAP_ARGON2)
    code, output = await auth_command(
        "create-operator",
        "--email",
        ADMIN_EMAIL,
        "--name",
        "Fuzz Admin",
        "--role",
        "admin",
        "--password-stdin",
        env=auth_env,
        stdin=ADMIN_PASSWORD + "\n",
    )
    assert code == 0, output
    auth = await ServiceProcess("auth", auth_env, tmp_path / "auth.log").start()
    tickets = None
    try:
        await auth.wait_ready()
        tickets_env = base_env(
            amqp_url,
            TICKETS_DATABASE_URL=await databases.empty("tickets"),
            TICKETS_AUTH_URL=auth.url,
        )
        tickets = await ServiceProcess("tickets", tickets_env, tmp_path / "tickets.log").start()
        status, admin = await auth.request(
            "POST", "/v1/token", json={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert status == 200, admin
        admin_headers = {"Authorization": f"Bearer {admin['access_token']}"}
        status, client = await auth.request(
            "POST",
            "/v1/clients",
            json={
                "name": "Fuzz Cliente",
                "email": "fuzz@example.com",
                "services": [{"name": "Hosting"}],
                "password": CLIENT_PASSWORD,
            },
            headers=admin_headers,
        )
        assert status == 201, client
        status, pair = await auth.request(
            "POST",
            "/v1/token",
            json={"username": client["client_number"], "password": CLIENT_PASSWORD},
        )
        assert status == 200, pair
        await tickets.wait_ready()

        # Once the client's services reached tickets, they have a ticket to be found.
        async def opened() -> bool:
            status, body = await tickets.request(
                "POST",
                "/v1/tickets",
                json={"service_id": client["services"][0]["id"], "category_id": 1, "body": "x"},
                headers={"Authorization": f"Bearer {pair['access_token']}"},
            )
            assert status in (201, 422), body
            return status == 201

        await wait_for(opened, timeout=15, message="the client's services in tickets")

        runs = await asyncio.gather(
            run_schemathesis(tickets.url, pair["access_token"], tmp_path / "as-client"),
            run_schemathesis(tickets.url, admin["access_token"], tmp_path / "as-admin"),
        )
        for who, (code, output) in zip(("client", "admin"), runs, strict=True):
            print(f"--- schemathesis as {who} ---\n{output}")
            assert code == 0, f"schemathesis as {who}:\n{output}"
        assert "http.unhandled_error" not in tickets.log(), tickets.log()[-5000:]
    finally:
        if tickets is not None:
            await tickets.stop()
        await auth.stop()
