"""Canned replies (SPEC 9.2): operators read them, admins write them."""

PATH = "/v1/canned-replies"


async def _add(desk, title, body="Hola, gracias por escribirnos.", expect=201):
    _status, reply = await desk.call(
        "POST", PATH, desk.admin, json={"title": title, "body": body}, expect=expect
    )
    return reply


async def test_admin_adds_changes_and_deletes_a_canned_reply(desk):
    reply = await _add(desk, "  Saludo  ", "Hola,\n\n  <b>gracias</b> ")
    assert reply == {"id": reply["id"], "title": "Saludo", "body": "Hola,\n\n  <b>gracias</b> "}
    assert reply["id"] > 0

    _, changed = await desk.call(
        "PATCH", f"{PATH}/{reply['id']}", desk.admin, json={"title": "Bienvenida"}, expect=200
    )
    assert changed == reply | {"title": "Bienvenida"}
    _, changed = await desk.call(
        "PATCH", f"{PATH}/{reply['id']}", desk.admin, json={"body": "Buenos días."}, expect=200
    )
    assert changed == {"id": reply["id"], "title": "Bienvenida", "body": "Buenos días."}
    _, listed = await desk.call("GET", PATH, desk.operator, expect=200)
    assert listed == [changed]

    _status, body = await desk.call("DELETE", f"{PATH}/{reply['id']}", desk.admin, expect=204)
    assert body is None
    _, listed = await desk.call("GET", PATH, desk.operator, expect=200)
    assert listed == []


async def test_operators_and_admins_list_them_ordered_by_title(desk):
    for title in ("cierre", "Bienvenida", "Aviso de corte"):
        await _add(desk, title)
    for who in (desk.operator, desk.admin):
        _, listed = await desk.call("GET", PATH, who, expect=200)
        assert [r["title"] for r in listed] == ["Aviso de corte", "Bienvenida", "cierre"]


async def test_a_title_taken_in_any_case_is_a_conflict(desk):
    first = await _add(desk, "Saludo")
    other = await _add(desk, "Despedida")
    conflict = await _add(desk, "SALUDO", expect=409)
    assert conflict["status"] == 409 and conflict["detail"]
    _, conflict = await desk.call(
        "PATCH", f"{PATH}/{other['id']}", desk.admin, json={"title": "saludo"}, expect=409
    )
    _, listed = await desk.call("GET", PATH, desk.operator)
    assert listed == [other, first]
    # Its own title in another case is no clash.
    await desk.call(
        "PATCH", f"{PATH}/{first['id']}", desk.admin, json={"title": "SALUDO"}, expect=200
    )


async def test_an_unknown_id_is_404(desk):
    await desk.call("PATCH", f"{PATH}/999999", desk.admin, json={"title": "X"}, expect=404)
    await desk.call("DELETE", f"{PATH}/999999", desk.admin, expect=404)
    reply = await _add(desk, "Saludo")
    await desk.call("DELETE", f"{PATH}/{reply['id']}", desk.admin, expect=204)
    await desk.call("DELETE", f"{PATH}/{reply['id']}", desk.admin, expect=404)


async def test_clients_and_operators_may_not_write_them(desk):
    client = await desk.new_client()
    reply = await _add(desk, "Saludo")
    await desk.call("GET", PATH, client["headers"], expect=403)
    for who in (desk.operator, client["headers"]):
        await desk.call("POST", PATH, who, json={"title": "Otro", "body": "Texto"}, expect=403)
        await desk.call("PATCH", f"{PATH}/{reply['id']}", who, json={"title": "Otro"}, expect=403)
        await desk.call("DELETE", f"{PATH}/{reply['id']}", who, expect=403)
    _, listed = await desk.call("GET", PATH, desk.operator, expect=200)
    assert listed == [reply]
    await desk.call("GET", PATH, {}, expect=401)


async def test_invalid_titles_and_bodies_are_422(desk):
    for payload in (
        {"title": "", "body": "Texto"},
        {"title": "   ", "body": "Texto"},
        {"title": "x" * 101, "body": "Texto"},
        {"title": "Saludo", "body": "   "},
        {"title": "Saludo", "body": "x" * 20_001},
        {"title": "Saludo"},
        {"title": "Saludo", "body": "Texto", "extra": 1},
    ):
        _, problem = await desk.call("POST", PATH, desk.admin, json=payload, expect=422)
        assert problem["errors"], payload
    assert await _add(desk, "x" * 100, "y" * 20_000)
    reply = await _add(desk, "Saludo")
    for payload in ({}, {"title": None, "body": None}, {"body": ""}, {"title": "x" * 101}):
        await desk.call("PATCH", f"{PATH}/{reply['id']}", desk.admin, json=payload, expect=422)
