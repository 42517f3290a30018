"""GET /v1/categories for anyone signed in; POST /v1/categories for admins only."""

SEEDED = (
    "Correo electrónico",
    "Dominios y DNS",
    "Facturación",
    "Hosting / sitio web",
    "Bases de datos",
)


async def test_client_and_operator_see_the_seeded_spanish_categories(desk):
    client = await desk.new_client()
    for who in (client["headers"], desk.operator, desk.admin):
        _status, body = await desk.call("GET", "/v1/categories", who, expect=200)
        names = [c["name"] for c in body]
        assert set(SEEDED) <= set(names)
        assert all(isinstance(c["id"], int) and c["id"] > 0 for c in body)
        assert len(names) == len(set(names))


async def test_admin_adds_a_category(desk):
    _status, body = await desk.call(
        "POST", "/v1/categories", desk.admin, json={"name": "Copias de seguridad"}, expect=201
    )
    assert body["name"] == "Copias de seguridad" and body["id"] > 0
    _, listed = await desk.call("GET", "/v1/categories", desk.operator, expect=200)
    assert {"id": body["id"], "name": "Copias de seguridad"} in listed


async def test_new_category_can_be_used_for_a_ticket(desk):
    _, category = await desk.call(
        "POST", "/v1/categories", desk.admin, json={"name": "Migraciones"}, expect=201
    )
    client = await desk.new_client()
    status, ticket = await desk.create(client, category_id=category["id"])
    assert status == 201, ticket
    assert ticket["subject"] == "Migraciones"
    assert ticket["category"] == category


async def test_a_duplicate_name_in_any_case_is_a_conflict(desk):
    for name in ("facturación", "FACTURACIÓN", "Facturación", "  Facturación  "):
        _status, body = await desk.call(
            "POST", "/v1/categories", desk.admin, json={"name": name}, expect=409
        )
        assert body["status"] == 409 and body["detail"]
    _, listed = await desk.call("GET", "/v1/categories", desk.operator)
    assert [c["name"].lower() for c in listed].count("facturación") == 1


async def test_operator_and_client_may_not_add_categories(desk):
    client = await desk.new_client()
    for who in (desk.operator, client["headers"]):
        _status, body = await desk.call(
            "POST", "/v1/categories", who, json={"name": "Nueva"}, expect=403
        )
        assert body["status"] == 403
    _, listed = await desk.call("GET", "/v1/categories", desk.operator)
    assert "Nueva" not in [c["name"] for c in listed]


async def test_without_a_token_it_is_401(desk):
    for method, kw in (("GET", {}), ("POST", {"json": {"name": "Nueva"}})):
        _status, body = await desk.call(method, "/v1/categories", {}, expect=401, **kw)
        assert body["type"] and body["title"] and body["status"] == 401
    bad = {"Authorization": "Bearer not-a-token"}
    await desk.call("GET", "/v1/categories", bad, expect=401)


async def test_an_empty_or_blank_name_is_invalid(desk):
    for payload in ({"name": ""}, {"name": "   "}, {}, {"name": "x" * 201}, {"name": 3}):
        _status, body = await desk.call(
            "POST", "/v1/categories", desk.admin, json=payload, expect=422
        )
        assert body["errors"], body
