"""Attachments (SPEC 9.2) against the real processes: a client uploads a PNG, a PDF and an SVG
with a script to one tickets instance and attaches them on the other; staff download
each as a file, never a page; another client finds none of them; the receipt names them with a
panel link and carries none; a file over the limit is 413."""

import aiohttp
import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite
from tests.e2e.test_story import one_email, text_of, token
from tests.support.files import form, pdf, png, svg_with_script
from tests.support.waiting import wait_for

CLIENT_EMAIL = "marta@cliente.example"
CLIENT_PASSWORD = "la clave de marta en el panel"
FILES = {"captura.png": png(), "factura.pdf": pdf(), "x.svg": svg_with_script()}
SERVED = {"captura.png": "image/png", "factura.pdf": "application/pdf"}


async def new_client(suite: Suite, admin: dict[str, str], name: str, email: str) -> dict:
    status, client = await suite.auth.request(
        "POST",
        "/v1/clients",
        headers=admin,
        json={
            "name": name,
            "email": email,
            "services": [{"name": f"Hosting de {name}"}],
            "password": CLIENT_PASSWORD,
        },
    )
    assert status == 201, client
    client["headers"] = await token(suite, client["client_number"], CLIENT_PASSWORD)
    return client


@pytest.mark.slow
async def test_files_are_attached_downloaded_as_files_and_named_in_the_receipt(
    suite: Suite,
) -> None:
    tickets, tickets_2 = suite.tickets
    admin = await token(suite, ADMIN_EMAIL, ADMIN_PASSWORD)
    marta = await new_client(suite, admin, "Marta Ruiz", CLIENT_EMAIL)
    other = await new_client(suite, admin, "Otro Cliente", "otro@cliente.example")
    me = marta["headers"]

    uploaded = []
    for name, data in FILES.items():
        status, body = await tickets.request(
            "POST", "/v1/attachments", headers=me, data=form(data, name)
        )
        assert status == 201, body
        uploaded.append(body)
    assert [f["content_type"] for f in uploaded] == [
        "image/png",
        "application/pdf",
        "application/octet-stream",  # an SVG can run scripts: a file to save, never an image
    ]
    status, categories = await tickets_2.request("GET", "/v1/categories", headers=me)
    assert status == 200, categories
    new_ticket = {
        "service_id": marta["services"][0]["id"],
        "category_id": next(c["id"] for c in categories if c["name"] == "Correo electrónico"),
        "body": "Adjunto captura, factura y el logo que no se ve.",
        "attachment_ids": [f["id"] for f in uploaded],
    }

    async def opened() -> dict | None:
        # Uploaded to one instance, attached on the other: the files are in the database.
        status, body = await tickets_2.request("POST", "/v1/tickets", headers=me, json=new_ticket)
        assert status in (201, 422), body
        return body if status == 201 else None

    ticket = await wait_for(opened, timeout=20, interval=0.2, message="tickets to know Marta")
    n = ticket["number"]
    assert ticket["messages"][0]["attachments"] == uploaded

    async with aiohttp.ClientSession() as session:
        for f in uploaded:
            url = f"{tickets_2.url}/v1/tickets/{n}/attachments/{f['id']}"
            async with session.get(url, headers=admin) as response:  # staff downloads
                assert response.status == 200
                assert await response.read() == FILES[f["name"]]
                assert response.headers["Content-Type"] == SERVED.get(
                    f["name"], "application/octet-stream"
                )
                assert response.headers["Content-Disposition"].startswith("attachment;")
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert response.headers["Content-Security-Policy"] == "sandbox"
            async with session.get(url, headers=other["headers"]) as response:
                assert response.status == 404

    receipt = text_of(await one_email(suite, CLIENT_EMAIL, 1, "the receipt"))
    for f in uploaded:
        assert f["name"] in receipt
        assert f"/tickets/{n}/attachments/{f['id']}" in receipt
    message = await one_email(suite, CLIENT_EMAIL, 1, "the receipt")
    assert not list(message.iter_attachments())

    status, problem = await tickets.request(
        "POST", "/v1/attachments", headers=me, data=form(b"\0" * (11 * 1024 * 1024), "big.bin")
    )
    assert status == 413, problem
