"""`python -m services.auth` as a real process: health, readiness, JSON logs, and several
instances migrating one empty database at once (SPEC §2)."""

import asyncio
import json

import asyncpg

from tests.support.processes import Service, auth_env
from tests.support.waiting import wait_for


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


async def test_serves_health_readiness_and_one_json_log_line_per_request(
    databases, amqp_url, tmp_path
):
    env = auth_env(await databases.empty("auth"), amqp_url)
    auth = await Service("auth", env, tmp_path).start()
    try:
        await auth.wait_ok("/healthz")
        await auth.wait_ready()
        status, body = await auth.request("GET", "/readyz")
        assert status == 200 and body["status"] == "ready"

        request_id = "test-one-request-1234"
        status, _ = await auth.request(
            "GET", "/.well-known/jwks.json", headers={"X-Request-ID": request_id}
        )
        assert status == 200

        def lines_of_request() -> list[dict]:
            return [
                line for line in json_lines(auth.log()) if line.get("correlation_id") == request_id
            ]

        await wait_for(lines_of_request, message="the request's log line")
        (line,) = lines_of_request()
        assert line["event"] == "http.request"
        assert line["path"] == "/.well-known/jwks.json" and line["status"] == 200
        assert line["method"] == "GET" and line["service"] == "auth"
        assert "timestamp" in line and "duration_ms" in line
        status, text = await auth.request("GET", "/metrics")
        assert status == 200 and "http_requests_total" in text
    finally:
        code = await auth.stop()
    assert code == 0, auth.log()
    # Every line the process wrote is JSON.
    assert all(line.lstrip().startswith("{") for line in auth.log().splitlines() if line.strip()), (
        auth.log()
    )


async def test_two_instances_on_one_empty_database_both_come_up(databases, amqp_url, tmp_path):
    dsn = await databases.empty("auth")
    env = auth_env(dsn, amqp_url)
    instances = [Service("auth", env, tmp_path, name=f"auth{i}") for i in range(2)]
    try:
        await asyncio.gather(*(i.start() for i in instances))
        await asyncio.gather(*(i.wait_ok("/healthz") for i in instances))
        await asyncio.gather(*(i.wait_ready() for i in instances))
        # Both sign with the same key.
        documents = [(await i.request("GET", "/.well-known/jwks.json"))[1] for i in instances]
        assert documents[0] == documents[1] and len(documents[0]["keys"]) == 1
    finally:
        codes = [await i.stop() for i in instances]
    assert codes == [0, 0], [i.log() for i in instances]

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT component, version, count(*) AS n FROM schema_migrations"
            " GROUP BY component, version ORDER BY component, version"
        )
        assert await conn.fetchval("SELECT count(*) FROM signing_keys") == 1
    finally:
        await conn.close()
    assert [(r["component"], r["version"], r["n"]) for r in rows] == [
        ("auth", 1, 1),
        ("shared", 1, 1),
        ("shared", 2, 1),
        ("shared", 3, 1),
    ]
