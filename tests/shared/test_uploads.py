"""shared.uploads on a bare app: a file streamed in pieces of the size asked, within the route's
own limit (not the app's 1 MiB for JSON), refused as soon as it passes it."""

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from shared.http import MAX_BODY_BYTES, create_base_app, json_response
from shared.models import ResponseModel
from shared.openapi import Route, add_routes
from shared.uploads import Upload, UploadedFile
from tests.support.files import MULTIPART, form, raw_form, streamed_file

LIMIT = web.AppKey("limit", int)
PIECE = 100_000


class Received(ResponseModel):
    filename: str | None
    size: int
    pieces: list[int]


async def receive(request: web.Request, upload: UploadedFile) -> web.Response:
    pieces = [len(p) async for p in upload.pieces(PIECE)]
    return json_response(Received(filename=upload.filename, size=upload.size, pieces=pieces))


async def client(limit: int) -> TestClient:
    app = create_base_app("test")
    app[LIMIT] = limit
    route = Route("POST", "/files", receive, "Take a file", roles=None, upload=Upload(LIMIT))
    add_routes(app, [route], title="t", version="1")
    test_client = TestClient(TestServer(app))
    await test_client.start_server()
    return test_client


async def test_a_file_over_the_apps_json_limit_streams_in_pieces_within_its_own():
    files = await client(limit=3 * MAX_BODY_BYTES)
    try:
        size = 2 * MAX_BODY_BYTES + 5
        headers = {"Content-Type": MULTIPART}
        response = await files.post("/files", data=streamed_file(size), headers=headers)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["filename"] == "big.bin" and body["size"] == size
        assert body["pieces"] == [PIECE] * (size // PIECE) + [size % PIECE]
        response = await files.post("/files", data=raw_form(b"", "vacio.txt"), headers=headers)
        assert (await response.json())["pieces"] == []
    finally:
        await files.close()


async def test_past_the_limit_is_413_declared_or_streamed():
    files = await client(limit=200_000)
    try:
        declared = await files.post("/files", data=form(b"x" * 300_000, "a.bin"))
        assert declared.status == 413
        problem = await declared.json(content_type=None)
        assert problem["max_bytes"] == 200_000
        streamed = await files.post(
            "/files", data=streamed_file(200_001), headers={"Content-Type": MULTIPART}
        )
        assert streamed.status == 413
        assert streamed.content_type == "application/problem+json"
        exact = await files.post(
            "/files", data=streamed_file(200_000), headers={"Content-Type": MULTIPART}
        )
        assert exact.status == 200
    finally:
        await files.close()


async def test_the_body_must_be_multipart_with_the_named_part_first():
    files = await client(limit=1000)
    try:
        assert (await files.post("/files", json={"file": "x"})).status == 415
        wrong_part = await files.post("/files", data=form(b"x", "a.txt", field="other"))
        assert wrong_part.status == 422
        errors = (await wrong_part.json(content_type=None))["errors"]
        assert errors == [{"field": "file", "message": errors[0]["message"]}]
        no_boundary = await files.post(
            "/files", data=b"x", headers={"Content-Type": "multipart/form-data"}
        )
        assert no_boundary.status == 422
    finally:
        await files.close()
