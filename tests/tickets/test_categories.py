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


# --- rename and disable (SPEC 9.2) -------------------------------------------------------------


async def _patch(desk, category_id, payload, who=None, expect=200):
    _status, body = await desk.call(
        "PATCH", f"/v1/categories/{category_id}", who or desk.admin, json=payload, expect=expect
    )
    return body


async def _create(desk, client, category_id):
    """POST /v1/tickets in `category_id` (Desk.create looks the default category up by name)."""
    payload = {
        "service_id": client["services"][0]["id"],
        "category_id": category_id,
        "body": "Otra consulta.",
        "allow_duplicate": True,
    }
    return await desk.call("POST", "/v1/tickets", client["headers"], json=payload)


async def test_admin_renames_a_category_and_its_tickets_keep_their_subject(desk):
    client = await desk.new_client()
    old = await desk.open(client)
    category_id = old["category"]["id"]
    renamed = await _patch(desk, category_id, {"name": "  Correo y webmail "})
    assert renamed == {"id": category_id, "name": "Correo y webmail", "disabled": False}
    _, listed = await desk.call("GET", "/v1/categories", client["headers"], expect=200)
    assert {"id": category_id, "name": "Correo y webmail"} in listed
    # The subject is what the ticket was opened as; the category shows its current name.
    _, ticket = await desk.get(old["number"], client["headers"], expect=200)
    assert ticket["subject"] == "Correo electrónico"
    assert ticket["category"] == {"id": category_id, "name": "Correo y webmail"}
    status, new = await _create(desk, client, category_id)
    assert status == 201 and new["subject"] == "Correo y webmail"


async def test_a_name_clash_is_409_and_an_unknown_category_404(desk):
    category_id = await desk.category("Facturación")
    for name in ("dominios y dns", "BASES DE DATOS"):
        problem = await _patch(desk, category_id, {"name": name}, expect=409)
        assert problem["status"] == 409 and problem["detail"]
    assert (await _patch(desk, category_id, {"name": "FACTURACIÓN"}))["name"] == "FACTURACIÓN"
    await _patch(desk, 999_999, {"disabled": True}, expect=404)
    for payload in ({}, {"name": ""}, {"name": None, "disabled": None}, {"disabled": "quizás"}):
        await _patch(desk, category_id, payload, expect=422)


async def test_a_disabled_category_is_not_offered_and_refused_for_new_tickets(desk):
    client = await desk.new_client()
    old = await desk.open(client)
    category_id = old["category"]["id"]
    assert await _patch(desk, category_id, {"disabled": True}) == {
        "id": category_id,
        "name": "Correo electrónico",
        "disabled": True,
    }
    for who in (client["headers"], desk.operator, desk.admin):
        _, listed = await desk.call("GET", "/v1/categories", who, expect=200)
        assert category_id not in [c["id"] for c in listed]
        assert all(set(c) == {"id", "name"} for c in listed)
    status, problem = await _create(desk, client, category_id)
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == ["category_id"]
    assert "no longer offered" in problem["errors"][0]["message"]
    # Its tickets go on as before.
    _, ticket = await desk.get(old["number"], client["headers"], expect=200)
    assert ticket["subject"] == "Correo electrónico"
    await desk.reply(old["number"], desk.operator, expect=201)
    await desk.reply(old["number"], client["headers"], expect=201)

    await _patch(desk, category_id, {"disabled": False})
    status, _ = await _create(desk, client, category_id)
    assert status == 201


async def test_staff_may_list_the_disabled_categories_too(desk):
    client = await desk.new_client()
    category_id = await desk.category("Otros")
    await _patch(desk, category_id, {"disabled": True})
    query = {"include_disabled": "true"}
    for who in (desk.operator, desk.admin):
        _, listed = await desk.call("GET", "/v1/categories", who, params=query, expect=200)
        assert {"id": category_id, "name": "Otros", "disabled": True} in listed
        assert all(c["disabled"] is False for c in listed if c["id"] != category_id)
    await desk.call("GET", "/v1/categories", client["headers"], params=query, expect=403)


async def test_only_admins_rename_or_disable_categories(desk):
    client = await desk.new_client()
    category_id = await desk.category("Otros")
    for who in (desk.operator, client["headers"]):
        await _patch(desk, category_id, {"name": "Varios"}, who=who, expect=403)
        await _patch(desk, category_id, {"disabled": True}, who=who, expect=403)
    _, listed = await desk.call("GET", "/v1/categories", desk.operator)
    assert {"id": category_id, "name": "Otros"} in listed
