"""`python -m services.auth create-operator` and `rotate-key` as real processes (SPEC §2)."""

import asyncpg

from deploy.processes import auth_env, create_operator, run_module

PASSWORD = "the first admin passphrase"


async def test_create_operator_on_an_empty_database_then_refuses_the_same_email(
    databases, amqp_url
):
    dsn = await databases.empty("auth")
    env = auth_env(dsn, amqp_url)
    code, out, err = await create_operator(env, "boss@helpdesk.example", PASSWORD, name="Boss")
    assert code == 0, err
    assert "boss@helpdesk.example" in out

    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT email, name, role, password_hash FROM operators")
        assert (row["email"], row["name"], row["role"]) == (
            "boss@helpdesk.example",
            "Boss",
            "admin",
        )
        assert row["password_hash"].startswith("$argon2id$")
        assert PASSWORD not in row["password_hash"]
    finally:
        await conn.close()

    code, out, err = await create_operator(
        env, "BOSS@helpdesk.example", "some other passphrase", role="operator"
    )
    assert code != 0
    assert "already exists" in err, err
    assert "Traceback" not in err

    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM operators") == 1
    finally:
        await conn.close()


async def test_create_operator_refuses_a_short_or_common_password(databases, amqp_url):
    env = auth_env(await databases.empty("auth"), amqp_url)
    for password, expected in (("short", "password"), ("qwertyuiop12345", "common")):
        code, _, err = await create_operator(env, "op@helpdesk.example", password)
        assert code != 0
        assert expected in err.lower(), err
        assert "Traceback" not in err
    code, _, err = await create_operator(env, "not-an-email", PASSWORD)
    assert code != 0 and "email" in err.lower(), err


async def test_create_operator_needs_its_arguments(databases, amqp_url):
    env = auth_env(await databases.empty("auth"), amqp_url)
    code, _, err = await run_module(
        "services.auth", "create-operator", "--email", "a@b.example", env=env
    )
    assert code != 0 and "--name" in err


async def test_rotate_key_exits_0_and_starts_a_new_signing_key(databases, amqp_url):
    dsn = await databases.empty("auth")
    env = auth_env(dsn, amqp_url)
    code, _, err = await run_module("services.auth", "rotate-key", env=env)
    assert code == 0, err
    code, out2, err = await run_module("services.auth", "rotate-key", env=env)
    assert code == 0, err
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT kid, retired_at FROM signing_keys ORDER BY created_at")
    finally:
        await conn.close()
    assert len(rows) == 2
    assert rows[0]["retired_at"] is not None and rows[1]["retired_at"] is None
    assert rows[1]["kid"] in out2
