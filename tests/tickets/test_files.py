"""Attachments through the HTTP API (SPEC 9.2): upload, attach to a ticket, a reply and a
reopening, download as a file and never as a page, the limits, and the purge of unused uploads."""

import asyncio
import uuid
from typing import Any

from services.tickets import files
from shared.resources import POOL
from tests.support.files import (
    MULTIPART,
    form,
    pdf,
    png,
    raw_form,
    streamed_file,
    svg_with_script,
)
from tests.support.waiting import wait_for

MiB = 1024 * 1024


async def upload(
    desk, who: dict[str, str], data: bytes, name: str | None = "f.bin", *, expect: int | None = 201
) -> tuple[int, Any]:
    return await desk.call("POST", "/v1/attachments", who, data=form(data, name), expect=expect)


def download_url(number: int, attachment_id: str) -> str:
    return f"/v1/tickets/{number}/attachments/{attachment_id}"


async def download_status(desk, number: int, attachment_id: str, who: dict[str, str]) -> int:
    response = await desk.tickets.get(download_url(number, attachment_id), headers=who)
    await response.read()
    return response.status


async def test_operator_downloads_png_pdf_and_svg_as_files_never_pages(desk, event_tap):
    client = await desk.new_client()
    _, image = await upload(desk, client["headers"], png(), "captura.png")
    _, document = await upload(desk, client["headers"], pdf(), "factura.pdf")
    _, script = await upload(desk, client["headers"], svg_with_script(), "x.svg")
    # Sniffed from the bytes (the form said text/html for each); an SVG can run scripts, so it
    # is served as bytes to save, never as image/svg+xml.
    assert image == {
        "id": image["id"],
        "name": "captura.png",
        "size": len(png()),
        "content_type": "image/png",
    }
    assert uuid.UUID(image["id"]).version == 4
    assert document["content_type"] == "application/pdf"
    assert script["content_type"] == "application/octet-stream"
    assert script["name"] == "x.svg" and script["size"] == len(svg_with_script())

    uploaded = [image, document, script]
    status, ticket = await desk.create(client, attachment_ids=[f["id"] for f in uploaded])
    assert status == 201, ticket
    assert ticket["messages"][0]["attachments"] == uploaded
    _, shown = await desk.get(ticket["number"], desk.operator, expect=200)
    assert shown["messages"][0]["attachments"] == uploaded

    contents = {image["id"]: png(), document["id"]: pdf(), script["id"]: svg_with_script()}
    for f in uploaded:
        url = download_url(ticket["number"], f["id"])
        for who in (desk.operator, client["headers"]):
            response = await desk.tickets.get(url, headers=who)
            assert response.status == 200, await response.text()
            assert await response.read() == contents[f["id"]]
            assert response.headers["Content-Type"] == f["content_type"]
            assert response.headers["Content-Length"] == str(f["size"])
            disposition = response.headers["Content-Disposition"]
            assert disposition.startswith("attachment;")
            assert f"filename*=UTF-8''{f['name']}" in disposition
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Content-Security-Policy"] == "sandbox"
            assert len(response.headers["X-Request-ID"]) == 32

    other = await desk.new_client("Otro Cliente", ("Otro hosting",))
    for f in uploaded:
        await desk.call(
            "GET", download_url(ticket["number"], f["id"]), other["headers"], expect=404
        )

    [event] = [
        b
        for b in await event_tap.wait("tickets.ticket.created")
        if b["data"]["number"] == ticket["number"]
    ]
    assert event["data"]["attachments"] == uploaded


async def test_reply_and_reopen_carry_their_files(desk, event_tap):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    _, log = await upload(desk, desk.operator, b"linea 1\nlinea 2\n", "registro.log")
    _, message = await desk.call(
        "POST",
        f"/v1/tickets/{n}/messages",
        desk.operator,
        json={"body": "Adjunto el registro.", "attachment_ids": [log["id"]]},
        expect=201,
    )
    assert message["attachments"] == [log]
    [replied] = [
        b["data"]
        for b in await event_tap.wait("tickets.ticket.replied")
        if b["data"]["message_id"] == message["id"]
    ]
    assert replied["attachments"] == [log]

    await desk.close(n, client["headers"], expect=200)
    _, image = await upload(desk, client["headers"], png(), "otra.png")
    _, reopened = await desk.call(
        "POST",
        f"/v1/tickets/{n}/reopen",
        client["headers"],
        json={"body": "Sigue igual.", "attachment_ids": [image["id"]]},
        expect=200,
    )
    assert [m["attachments"] for m in reopened["messages"]] == [[], [log], [image]]
    [event] = [
        b["data"]
        for b in await event_tap.wait("tickets.ticket.reopened")
        if b["data"]["number"] == n
    ]
    assert event["attachments"] == [image]
    # A message without files has an empty list, and its event too.
    _, plain = await desk.reply(n, desk.operator, "Sin archivos.", expect=201)
    assert plain["attachments"] == []


async def test_eleven_mib_is_413_whether_declared_or_streamed(desk):
    client = await desk.new_client()
    pool = desk.tickets.server.app[POOL]
    big = b"\0" * (11 * MiB)
    _, problem = await upload(desk, client["headers"], big, "grande.bin", expect=413)
    assert problem["status"] == 413 and problem["max_bytes"] == 10 * MiB
    # Without a Content-Length the service cannot know in advance: it stops at the limit.
    response = await desk.tickets.post(
        "/v1/attachments",
        data=streamed_file(11 * MiB),
        headers=client["headers"] | {"Content-Type": MULTIPART},
    )
    assert response.status == 413, await response.text()
    assert response.content_type == "application/problem+json"
    # Nothing is left of what was received before the limit.
    assert await pool.fetchval("SELECT count(*) FROM attachments") == 0
    assert await pool.fetchval("SELECT count(*) FROM attachment_chunks") == 0
    # Exactly the limit is fine, and comes back whole.
    response = await desk.tickets.post(
        "/v1/attachments",
        data=streamed_file(10 * MiB),
        headers=client["headers"] | {"Content-Type": MULTIPART},
    )
    assert response.status == 201, await response.text()
    assert (await response.json())["size"] == 10 * MiB


async def test_at_most_five_files_each_named_once(desk):
    client = await desk.new_client()
    ids = [(await upload(desk, client["headers"], png(), f"{i}.png"))[1]["id"] for i in range(6)]
    status, problem = await desk.create(client, attachment_ids=ids)
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == ["attachment_ids"]
    status, problem = await desk.create(client, attachment_ids=[ids[0], ids[0]])
    assert status == 422 and problem["errors"][0]["field"] == "attachment_ids"
    status, ticket = await desk.create(client, attachment_ids=ids[:5])
    assert status == 201 and len(ticket["messages"][0]["attachments"]) == 5


async def test_only_the_callers_unused_uploads_can_be_attached(desk):
    client = await desk.new_client()
    other = await desk.new_client("Otro Cliente", ("Otro hosting",))
    _, theirs = await upload(desk, other["headers"], png(), "suya.png")
    _, mine = await upload(desk, client["headers"], png(), "mia.png")
    _, operators = await upload(desk, desk.operator, pdf(), "del operador.pdf")

    for wrong in (theirs["id"], operators["id"], str(uuid.uuid4())):
        status, problem = await desk.create(client, attachment_ids=[mine["id"], wrong])
        assert status == 422, problem
        assert problem["errors"][0]["field"] == "attachment_ids.1"
    # Nothing was written by the refused requests: the client has no ticket, and `mine` is free.
    assert await desk.numbers(client["headers"]) == []
    status, ticket = await desk.create(client, attachment_ids=[mine["id"]])
    assert status == 201
    n = ticket["number"]
    # Used once, it cannot be used again, in any write.
    status, problem = await desk.call(
        "POST",
        f"/v1/tickets/{n}/messages",
        client["headers"],
        json={"body": "Otra vez.", "attachment_ids": [mine["id"]]},
        expect=422,
    )
    assert problem["errors"][0]["field"] == "attachment_ids.0"
    # The operator cannot attach a client's upload either.
    _, fresh = await upload(desk, client["headers"], png(), "nueva.png")
    await desk.call(
        "POST",
        f"/v1/tickets/{n}/messages",
        desk.operator,
        json={"body": "Adjunto.", "attachment_ids": [fresh["id"]]},
        expect=422,
    )


async def test_downloads_only_of_the_tickets_own_files(desk):
    client = await desk.new_client()
    _, attached = await upload(desk, client["headers"], png(), "a.png")
    _, unused = await upload(desk, client["headers"], png(), "b.png")
    first = (await desk.open(client, attachment_ids=[attached["id"]]))["number"]
    second = (await desk.open(client, "Otro asunto.", allow_duplicate=True))["number"]
    assert await download_status(desk, first, attached["id"], client["headers"]) == 200
    await desk.call("GET", download_url(second, attached["id"]), client["headers"], expect=404)
    await desk.call("GET", download_url(first, unused["id"]), client["headers"], expect=404)
    await desk.call("GET", download_url(first, unused["id"]), desk.operator, expect=404)
    await desk.call("GET", download_url(999_999, attached["id"]), desk.operator, expect=404)
    await desk.call("GET", download_url(first, attached["id"]), {}, expect=401)


async def test_names_are_cleaned_and_bounded(desk):
    client = await desk.new_client()
    who = client["headers"]
    _, f = await upload(desk, who, pdf(), "C:\\fakepath\\informe.pdf")
    assert f["name"] == "informe.pdf"
    _, f = await upload(desk, who, pdf(), "../../etc/passwd")
    assert f["name"] == "passwd"
    # Percent-escapes decoded; a right-to-left override and a control character dropped.
    for sent in ("fac%E2%80%AEtura%07.pdf", "fac\u202etura.pdf"):
        _, f = await desk.call(
            "POST",
            "/v1/attachments",
            who | {"Content-Type": MULTIPART},
            data=raw_form(pdf(), sent),
            expect=201,
        )
        assert f["name"] == "factura.pdf"
    _, f = await upload(desk, who, png(), "año «2026» ñ.png")
    assert f["name"] == "año «2026» ñ.png"
    n = (await desk.open(client, attachment_ids=[f["id"]]))["number"]
    response = await desk.tickets.get(download_url(n, f["id"]), headers=who)
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="a_o _2026_ _.png"; '
        "filename*=UTF-8''a%C3%B1o%20%C2%AB2026%C2%BB%20%C3%B1.png"
    )
    _, f = await upload(desk, who, png(), "n" * 251 + ".png")
    assert len(f["name"]) == 255
    for bad in ("n" * 252 + ".png", "", "   ", "..", "a/", "%0A", None):
        _, problem = await desk.call(
            "POST",
            "/v1/attachments",
            who | {"Content-Type": MULTIPART},
            data=raw_form(png(), bad),
            expect=422,
        )
        assert problem["errors"][0]["field"] == "file", bad


async def test_upload_body_must_be_multipart_with_the_file_first(desk):
    who = (await desk.new_client())["headers"]
    await desk.call("POST", "/v1/attachments", who, json={"file": "x"}, expect=415)
    _, problem = await desk.call(
        "POST", "/v1/attachments", who, data=form(png(), "a.png", field="archivo"), expect=422
    )
    assert problem["errors"][0]["field"] == "file"
    await desk.call(
        "POST",
        "/v1/attachments",
        who | {"Content-Type": "multipart/form-data; boundary=other"},
        data=b"--nope\r\n",
        expect=422,
    )
    await desk.call("POST", "/v1/attachments", {}, data=form(png(), "a.png"), expect=401)
    # An empty file is a file.
    _, empty = await upload(desk, who, b"", "vacio.txt")
    assert empty["size"] == 0 and empty["content_type"] == "application/octet-stream"


async def test_purge_deletes_unused_uploads_and_keeps_used_ones(desk):
    client = await desk.new_client()
    pool = desk.tickets.server.app[POOL]
    _, used = await upload(desk, client["headers"], png(), "usada.png")
    _, unused = await upload(desk, client["headers"], b"x" * 300_000, "olvidada.bin")
    n = (await desk.open(client, attachment_ids=[used["id"]]))["number"]
    # Younger than a day: kept.
    assert await files.purge_unused(pool, older_than=24 * 3600) == 0
    assert await files.purge_unused(pool, older_than=0) == 1
    ids = {str(r["id"]) for r in await pool.fetch("SELECT id FROM attachments")}
    assert ids == {used["id"]}
    chunk_owners = {
        str(r[0]) for r in await pool.fetch("SELECT attachment_id FROM attachment_chunks")
    }
    assert chunk_owners == {used["id"]}
    assert await download_status(desk, n, used["id"], client["headers"]) == 200
    status, _ = await desk.create(client, attachment_ids=[unused["id"]], allow_duplicate=True)
    assert status == 422


async def test_two_writes_naming_one_upload_at_once_attach_it_once(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    _, shared = await upload(desk, client["headers"], png(), "una.png")

    async def reply() -> int:
        status, _ = await desk.call(
            "POST",
            f"/v1/tickets/{n}/messages",
            client["headers"],
            json={"body": "Adjunto.", "attachment_ids": [shared["id"]]},
        )
        return status

    statuses = await asyncio.gather(*(reply() for _ in range(4)))
    assert sorted(statuses) == [201, 422, 422, 422]
    _, ticket = await desk.get(n, client["headers"], expect=200)
    assert [len(m["attachments"]) for m in ticket["messages"]] == [0, 1]


async def test_a_repeated_request_with_its_key_answers_the_same_files(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    _, f = await upload(desk, client["headers"], pdf(), "factura.pdf")
    once = client["headers"] | {"Idempotency-Key": f"reply-{uuid.uuid4()}"}
    payload = {"body": "La factura.", "attachment_ids": [f["id"]]}
    path = f"/v1/tickets/{n}/messages"
    _, first = await desk.call("POST", path, once, json=payload, expect=201)
    _, again = await desk.call("POST", path, once, json=payload, expect=201)
    assert again == first and first["attachments"] == [f]


async def test_an_upload_broken_off_leaves_nothing_behind(desk):
    client = await desk.new_client()
    pool = desk.tickets.server.app[POOL]
    url = desk.tickets.make_url("/v1/attachments")
    _, writer = await asyncio.open_connection(url.host, url.port)
    head = (
        "POST /v1/attachments HTTP/1.1\r\n"
        f"Host: {url.host}:{url.port}\r\n"
        f"Authorization: {client['headers']['Authorization']}\r\n"
        f"Content-Type: {MULTIPART}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    writer.write(head.encode())
    sent = 0
    async for piece in streamed_file(2 * MiB):
        writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        sent += len(piece)
        if sent > MiB:
            break
    await writer.drain()

    async def receiving() -> bool:
        return await pool.fetchval("SELECT count(*) FROM attachment_chunks") > 0

    await wait_for(receiving, message="the first chunks stored")
    writer.close()  # the client goes away in the middle of the file

    async def forgotten() -> bool:
        return await pool.fetchval("SELECT count(*) FROM attachments") == 0

    await wait_for(forgotten, message="the broken-off upload deleted")
    assert await pool.fetchval("SELECT count(*) FROM attachment_chunks") == 0
