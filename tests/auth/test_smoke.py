async def test_admin_creates_client_who_logs_in(api, admin):
    client = await api.create_client(admin)
    assert client["client_number"].isdigit()
    pair = await api.token(client["client_number"], "the client passphrase for tests")
    r = await api.http.get("/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert r.status == 200
    me = await r.json()
    assert me["kind"] == "client" and me["services"][0]["name"].startswith("Hosting")
