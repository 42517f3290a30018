"""Schemathesis against the running auth's own OpenAPI document: no 5xx, and every answer
(status, content type, body) is one the document allows."""

import asyncio
import os
import sys
from pathlib import Path

from tests.auth.procs import AuthProcess, auth_env, create_operator

ST = Path(sys.executable).with_name("st")
ADMIN_EMAIL = "fuzz-admin@helpdesk.example"
ADMIN_PASSWORD = "a fuzzing admin passphrase"
FUZZ_CLIENT = {
    "name": "Fuzz Client",
    "email": "fuzz@example.com",
    "password": "a fuzzing client passphrase",
}
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


async def run_schemathesis(base_url: str, token: str, tmp_path: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(ST),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        "25",
        # One worker: with several threads, hypothesis' code generation hits CPython 3.11's
        # "SystemError: AST constructor recursion depth mismatch" (gh-106905) now and then.
        "--workers",
        "1",
        "--seed",
        "20261125",
        "--request-timeout",
        "10",
        "-H",
        f"Authorization: Bearer {token}",
        "--report-dir",
        str(tmp_path / "st-report"),
        cwd=tmp_path,
        env=os.environ | {"NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 150)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -1, "schemathesis timed out\n" + out.decode(errors="replace")
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    databases, amqp_url, tmp_path
):
    env = auth_env(await databases.empty("auth"), amqp_url)
    code, _, err = await create_operator(env, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert code == 0, err
    auth = await AuthProcess(env, tmp_path / "auth.log").start()
    try:
        await auth.wait_healthy()
        status, pair = await auth.request(
            "POST", "/v1/token", json={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert status == 200, pair
        admin = {"Authorization": f"Bearer {pair['access_token']}"}
        status, client = await auth.request("POST", "/v1/clients", json=FUZZ_CLIENT, headers=admin)
        assert status == 201, client
        status, client_pair = await auth.request(
            "POST",
            "/v1/token",
            json={"username": client["client_number"], "password": FUZZ_CLIENT["password"]},
        )
        assert status == 200, client_pair

        # As an admin (every staff route), then as a client (PATCH /v1/me and the like).
        for token in (pair["access_token"], client_pair["access_token"]):
            code, output = await run_schemathesis(auth.url, token, tmp_path)
            assert code == 0, output
        assert "Internal Server Error" not in auth.log()
    finally:
        await auth.stop()
