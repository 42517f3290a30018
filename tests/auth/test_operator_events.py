"""auth.operator.changed: auth announces every operator it creates or an admin changes, so that
tickets knows whom it may assign tickets to (SPEC 9.2)."""

import shutil

import asyncpg

from services.auth.app import MIGRATIONS
from shared import events
from shared.db import SHARED_MIGRATIONS, apply_migrations
from tests.auth.conftest import OPERATOR_EMAIL, OPERATOR_PASSWORD


def _by_operator(event_tap, operator_id):
    return [
        b["data"]
        for b in event_tap.bodies("auth.operator.changed")
        if b["data"]["operator_id"] == operator_id
    ]


async def test_the_create_operator_command_announces_its_operators(event_tap, api, admin, pool):
    bodies = await event_tap.wait("auth.operator.changed", count=2)
    assert sorted((b["data"]["name"], b["data"]["role"]) for b in bodies) == [
        ("Ada Admin", "admin"),
        ("Oscar Operador", "operator"),
    ]
    assert all(b["data"]["disabled"] is False for b in bodies)
    rows = await pool.fetch(
        "SELECT aggregate, payload->'data'->>'operator_id' AS id FROM outbox"
        " WHERE routing_key = 'auth.operator.changed'"
    )
    assert {r["aggregate"] for r in rows} == {f"operator:{r['id']}" for r in rows}


async def test_an_operator_created_by_an_admin_is_announced(event_tap, api, admin):
    body = {
        "email": "nueva@helpdesk.example",
        "name": "Nora Nueva",
        "role": "operator",
        "password": "a new operator passphrase",
    }
    response = await api.http.post("/v1/operators", json=body, headers=admin)
    assert response.status == 201, await response.text()
    created = await response.json()
    await event_tap.wait("auth.operator.changed", count=3)
    assert _by_operator(event_tap, created["id"]) == [
        {"operator_id": created["id"], "name": "Nora Nueva", "role": "operator", "disabled": False}
    ]
    # A refused creation (the email exists) announces nothing.
    response = await api.http.post("/v1/operators", json=body, headers=admin)
    assert response.status == 409
    assert len(_by_operator(event_tap, created["id"])) == 1


async def test_an_admins_change_announces_the_whole_state(event_tap, api, admin, pool):
    operator_id = await pool.fetchval("SELECT id FROM operators WHERE email = $1", OPERATOR_EMAIL)
    await api.bearer(OPERATOR_EMAIL, OPERATOR_PASSWORD)
    for change in ({"name": "Oscar Pérez"}, {"role": "admin"}, {"disabled": True}):
        response = await api.http.patch(f"/v1/operators/{operator_id}", json=change, headers=admin)
        assert response.status == 200, await response.text()
    await event_tap.wait("auth.operator.changed", count=5)
    states = [(d["name"], d["role"], d["disabled"]) for d in _by_operator(event_tap, operator_id)]
    assert states == [
        ("Oscar Operador", "operator", False),
        ("Oscar Pérez", "operator", False),
        ("Oscar Pérez", "admin", False),
        ("Oscar Pérez", "admin", True),
    ]
    # A refused change (the last admin) announces nothing.
    admin_id = await pool.fetchval("SELECT id FROM operators WHERE role = 'admin' AND NOT disabled")
    response = await api.http.patch(
        f"/v1/operators/{admin_id}", json={"role": "operator"}, headers=admin
    )
    assert response.status == 409, await response.text()
    assert len(_by_operator(event_tap, admin_id)) == 1


async def test_migration_0007_announces_the_operators_made_before_it(databases, tmp_path):
    older = tmp_path / "migrations"
    older.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if int(path.name.split("_")[0]) < 7:
            shutil.copy(path, older)
    conn = await asyncpg.connect(await databases.empty("auth"))
    try:
        await apply_migrations(conn, [("shared", SHARED_MIGRATIONS), ("auth", older)])
        for email, name, role, disabled in (
            ("a@helpdesk.example", "Ada", "admin", False),
            ("b@helpdesk.example", "Beto", "operator", True),
        ):
            await conn.execute(
                "INSERT INTO operators (email, name, role, password_hash, disabled)"
                " VALUES ($1, $2, $3, 'x', $4)",
                email,
                name,
                role,
                disabled,
            )
        await apply_migrations(conn, [("shared", SHARED_MIGRATIONS), ("auth", MIGRATIONS)])
        rows = await conn.fetch("SELECT event_id, aggregate, payload FROM outbox ORDER BY id")
    finally:
        await conn.close()
    envelopes = [events.Envelope.model_validate_json(r["payload"]) for r in rows]
    assert [e.id for e in envelopes] == [r["event_id"] for r in rows]
    assert [e.parsed() for e in envelopes] == [
        events.OperatorChanged(operator_id=1, name="Ada", role="admin", disabled=False),
        events.OperatorChanged(operator_id=2, name="Beto", role="operator", disabled=True),
    ]
    assert [r["aggregate"] for r in rows] == ["operator:1", "operator:2"]
