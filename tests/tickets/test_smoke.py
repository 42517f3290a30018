async def test_client_opens_ticket_and_operator_answers(desk):
    client = await desk.new_client()
    ticket = await desk.open(client)
    assert ticket["status"] == "open" and ticket["subject"] == "Correo electrónico"
    r = await desk.tickets.post(
        f"/v1/tickets/{ticket['number']}/messages",
        json={"body": "Revisado."},
        headers=desk.operator,
    )
    assert r.status == 201, await r.text()
    r = await desk.tickets.get(f"/v1/tickets/{ticket['number']}", headers=client["headers"])
    body = await r.json()
    assert body["status"] == "answered"
    assert [m["author"]["kind"] for m in body["messages"]] == ["client", "operator"]
