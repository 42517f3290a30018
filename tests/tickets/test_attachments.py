"""Attachments' rules without I/O: names, served types, which uploads a message may take, and
the headers of a download."""

import uuid

import pytest

from services.tickets import attachments
from shared.errors import ValidationFailed
from tests.support.files import pdf, png, svg_with_script

OWNER = "client:100001"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("informe.pdf", "informe.pdf"),
        ("C:\\fakepath\\informe.pdf", "informe.pdf"),
        ("../../etc/passwd", "passwd"),
        ("a%2Fb.txt", "b.txt"),  # an escaped slash is a slash
        ("%22citado%22.txt", '"citado".txt'),
        ("  espacios  .txt ", "espacios  .txt"),
        ("fac\u202etura.pdf", "factura.pdf"),
        ("línea\r\nnueva\t.txt", "líneanueva.txt"),
        ("cafe\u0301.png", "café.png"),  # NFC
        ("n" * 255, "n" * 255),
    ],
)
def test_clean_name_keeps_the_base_name_without_controls(sent, kept):
    assert attachments.clean_name(sent) == kept


@pytest.mark.parametrize("sent", [None, "", "  ", ".", "..", "dir/", "\x07", "n" * 256])
def test_clean_name_refuses_empty_or_too_long_names(sent):
    with pytest.raises(ValidationFailed) as refused:
        attachments.clean_name(sent)
    assert refused.value.extra["errors"][0]["field"] == "file"


@pytest.mark.parametrize(
    ("head", "served"),
    [
        (png(), "image/png"),
        (pdf(), "application/pdf"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (svg_with_script(), "application/octet-stream"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "application/octet-stream"),
        (b"<!DOCTYPE html><html><script>alert(1)</script>", "application/octet-stream"),
        (b'<?xml version="1.0"?><a/>', "application/octet-stream"),
        (b"2026-12-03 error: disco lleno\n", "application/octet-stream"),
        (b"\x7fELF\x02\x01\x01", "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_served_type_is_sniffed_and_never_one_a_browser_runs(head, served):
    assert attachments.served_type(head) == served


def _row(owner: str = OWNER, *, size: int | None = 10, message_id: int | None = None) -> dict:
    return {"id": uuid.uuid4(), "owner_sub": owner, "size": size, "message_id": message_id}


def test_usable_gives_the_callers_unused_uploads_in_the_order_asked():
    first, second = _row(), _row()
    rows = [second, first]
    assert attachments.usable(rows, [first["id"], second["id"]], OWNER) == [first, second]
    assert attachments.usable([], [], OWNER) == []


@pytest.mark.parametrize(
    "bad",
    [
        _row("client:100002"),  # another client's
        _row("operator:1"),  # an operator's
        _row(size=None),  # still being received
        _row(message_id=7),  # already attached
        None,  # unknown (or purged)
    ],
)
def test_usable_refuses_any_other_upload_naming_its_place(bad):
    mine = _row()
    rows = [mine] + ([bad] if bad else [])
    wanted = [mine["id"], bad["id"] if bad else uuid.uuid4()]
    with pytest.raises(ValidationFailed) as refused:
        attachments.usable(rows, wanted, OWNER)
    assert refused.value.extra["errors"][0]["field"] == "attachment_ids.1"


def test_download_headers_make_every_file_a_download():
    headers = attachments.download_headers(
        name='año "final"\\%.pdf', size=12, content_type="application/pdf"
    )
    assert headers == {
        "Content-Type": "application/pdf",
        "Content-Length": "12",
        "Content-Disposition": (
            'attachment; filename="a_o _final___.pdf"; '
            "filename*=UTF-8''a%C3%B1o%20%22final%22%5C%25.pdf"
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, no-store",
    }
