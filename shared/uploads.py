"""File uploads: a `multipart/form-data` body whose file part is read as a stream, within a bound
of the route's own.

JSON bodies are bounded by the app's `client_max_size` (shared/http.py, 1 MiB), which aiohttp
enforces when `request.read()` reads the body whole. A route that takes a file declares an `Upload`
instead (shared/openapi.py, `Route.upload`): its body is never read whole, so that bound does not
apply, and the route's own (a setting of the service, kept on the app under `Upload.max_bytes`)
is enforced here while the bytes arrive: a declared Content-Length over it is refused before
anything is read, and a body without one (chunked) as soon as the file passes it. Nothing read
is kept but the piece being built.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from shared.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed

# What is asked of aiohttp's multipart reader at a time; callers' pieces are built of these.
READ_BYTES = 64 * 1024
# The multipart framing around the file (boundaries, the part's headers, a small field or two),
# allowed beyond the file's limit in a declared Content-Length.
FRAMING_BYTES = 16 * 1024


@dataclass(frozen=True)
class Upload:
    """A route's file body: the app key of its limit in bytes, and the name of its part."""

    max_bytes: web.AppKey[int]
    part: str = "file"

    def openapi_body(self) -> dict[str, Any]:
        schema = {
            "type": "object",
            "required": [self.part],
            "properties": {self.part: {"type": "string", "format": "binary"}},
        }
        return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The file is larger than the limit of {max_bytes} bytes.", max_bytes=max_bytes
    )


def _invalid(part: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [{"field": part, "message": message}])


class UploadedFile:
    """The file part of a request, not read yet: `filename` as the caller sent it (None without
    one), the bytes from `pieces()`."""

    def __init__(self, part: BodyPartReader, name: str, max_bytes: int) -> None:
        self.filename = part.filename
        self.size = 0
        self._part = part
        self._name = name
        self._max_bytes = max_bytes

    async def pieces(self, size: int) -> AsyncIterator[bytes]:
        """The file in pieces of `size` bytes, the last one shorter (none for an empty file);
        413 as soon as the file passes the limit, 422 when the body is malformed."""
        pending = bytearray()
        while True:
            try:
                data = await self._part.read_chunk(READ_BYTES)
            except (ValueError, HttpProcessingError) as exc:
                raise _invalid(self._name, "The multipart body is malformed.") from exc
            if not data:
                break
            self.size += len(data)
            if self.size > self._max_bytes:
                raise too_large(self._max_bytes)
            pending += data
            while len(pending) >= size:
                yield bytes(memoryview(pending)[:size])
                del pending[:size]
        if pending:
            yield bytes(pending)


async def read_upload(request: web.Request, upload: Upload) -> UploadedFile:
    """The request's file part, its headers read and its bytes not yet: 415 for a body that is
    not multipart/form-data, 413 for a declared length over the limit, 422 unless the first part
    is the file."""
    max_bytes = request.app[upload.max_bytes]
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(
            f"Send the file as multipart/form-data, in a part named `{upload.part}`."
        )
    length = request.content_length
    if length is not None and length > max_bytes + FRAMING_BYTES:
        raise too_large(max_bytes)
    expected = f"The body's first part must be the file, named `{upload.part}`."
    try:
        part = await (await request.multipart()).next()
    except (ValueError, KeyError, AssertionError, HttpProcessingError) as exc:
        raise _invalid(upload.part, expected) from exc
    if not isinstance(part, BodyPartReader) or part.name != upload.part:
        raise _invalid(upload.part, expected)
    return UploadedFile(part, upload.part, max_bytes)
