"""Files for the attachment tests: small real PNG, PDF and SVG, and multipart bodies built by
hand, streamed without a Content-Length (chunked), so the service cannot refuse them by it."""

import struct
import zlib
from collections.abc import AsyncIterator

import aiohttp

BOUNDARY = "helpdesk-test-boundary-4f1c2a"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def png() -> bytes:
    """A 1x1 red PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def svg_with_script() -> bytes:
    return (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b"<script>alert(document.cookie)</script></svg>\n"
    )


def form(data: bytes, filename: str | None, *, field: str = "file") -> aiohttp.FormData:
    out = aiohttp.FormData()
    # The type the client claims is never believed: always one that would be wrong.
    out.add_field(field, data, filename=filename, content_type="text/html")
    return out


async def streamed_file(size: int, *, piece: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A multipart body with one file of `size` bytes, in pieces (a chunked request)."""
    yield (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    block = b"\xa5" * piece
    sent = 0
    while sent < size:
        n = min(piece, size - sent)
        yield block[:n]
        sent += n
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def raw_form(data: bytes, filename: str | None) -> bytes:
    """A multipart body whose part names `filename` exactly as given (UTF-8, not escaped), as a
    browser sends it, or not at all (None): aiohttp's FormData would percent-encode it, refuse
    control characters, and name a file that has no name after its field."""
    name = "" if filename is None else f'; filename="{filename}"'
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"{name}\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()
