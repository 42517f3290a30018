"""`python -m services.auth` as a real process: health, readiness, JSON logs, and several
instances migrating one empty database at once (SPEC §2)."""

import asyncio
import json
from pathlib import Path

import aiohttp
import asyncpg

from deploy.processes import Service, auth_env, create_operator
from services.auth.app import MIGRATIONS
from tests.support.sealing import SEALING_ENV
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
    env = auth_env(await databases.empty("auth"), amqp_url, **SEALING_ENV)
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
    env = auth_env(dsn, amqp_url, **SEALING_ENV)
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
    auth_versions = sorted(int(p.name[:4]) for p in MIGRATIONS.glob("*.sql"))
    assert [(r["component"], r["version"], r["n"]) for r in rows] == [
        *(("auth", version, 1) for version in auth_versions),
        ("shared", 1, 1),
        ("shared", 2, 1),
        ("shared", 3, 1),
    ]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_a_burst_of_logins_stays_within_memory_and_is_answered(databases, amqp_url, tmp_path):
    """Production's Argon2 memory cost (64 MiB a hash) and two hashes at a time, as a 256 MiB
    container would get: ten logins at once never take the process past the limit, and each is
    answered, 200 or 503 with Retry-After, none left waiting."""
    password = "a long operator passphrase for the burst"
    env = auth_env(await databases.empty("auth"), amqp_url, **SEALING_ENV) | {
        "AUTH_ARGON2_MEMORY_COST": "65536",
        "AUTH_ARGON2_CONCURRENCY": "2",
        "AUTH_ARGON2_WAIT": "0.3",
        "AUTH_LOGIN_MAX_FAILURES": "1000",  # each login of the burst counts until it succeeds
    }
    code, _, err = await create_operator(env, "burst@example.com", password)
    assert code == 0, err
    auth = await Service("auth", env, tmp_path).start()
    try:
        await auth.wait_ready()
        assert auth.proc is not None
        pid = auth.proc.pid
        peak = rss_bytes(pid)
        sampling = True

        async def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, rss_bytes(pid))
                await asyncio.sleep(0.005)

        sampler = asyncio.create_task(sample())
        body = {"username": "burst@example.com", "password": password}

        async def login(session: aiohttp.ClientSession) -> tuple[int, str | None]:
            async with session.post(f"{auth.url}/v1/token", json=body) as response:
                return response.status, response.headers.get("Retry-After")

        async with aiohttp.ClientSession() as session:
            answers = await asyncio.wait_for(
                asyncio.gather(*(login(session) for _ in range(10))), timeout=60
            )
        sampling = False
        await sampler
    finally:
        await auth.stop()
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 503} and 200 in statuses, statuses
    assert all(retry_after for status, retry_after in answers if status == 503), answers
    assert peak < 256 * 1024 * 1024, f"peak RSS {peak / 2**20:.0f} MiB"
