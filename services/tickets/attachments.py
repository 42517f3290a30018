"""Attachments' rules, tested without I/O (SPEC 9.2): the name a file is kept under, the content
type it is served as, which uploads a message may take, and the headers of a download.

Nothing uploaded is ever shown inline: every download is `Content-Disposition: attachment`, with
`X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox`, and the content type is
sniffed from the bytes (never the client's word) and then kept only for types no browser runs as
a page or a script; SVG, HTML, XML and whatever is not recognised go out as
application/octet-stream.
"""

import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import puremagic

from shared.errors import ValidationFailed

# A file is stored, and read back, in rows of this size: a request holds one or two of them,
# never the whole file.
CHUNK_BYTES = 256 * 1024
MAX_PER_MESSAGE = 5
NAME_MAX = 255
# Uploads that no message took within this time are deleted (SPEC 9.2), every PURGE_INTERVAL.
UNUSED_KEEP_SECONDS = 24 * 3600.0
PURGE_INTERVAL = 600.0

OCTET_STREAM = "application/octet-stream"
# Sniffed types served as they are: formats a browser shows as media or hands to a viewer or a
# download, never runs as a page. Images except SVG, audio and video are allowed by prefix.
_INERT_TYPES = frozenset(
    {
        "application/pdf",
        "application/zip",
        "application/gzip",
        "application/x-gzip",
        "application/x-tar",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-7z-compressed",
        "application/x-rar-compressed",
        "application/vnd.rar",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/rtf",
    }
)
_INERT_PREFIXES = (
    "image/",
    "audio/",
    "video/",
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.oasis.opendocument.",
)
# Line and paragraph separators, and the C categories: controls, format characters (the
# right-to-left override that turns `fdp.exe` into what reads as `exe.pdf`), surrogates.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
# The bytes RFC 8187 leaves unencoded in `filename*` (attr-char).
_ATTR_CHARS = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~"
)


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [{"field": field, "message": message}])


def clean_name(filename: str | None) -> str:
    """The name a file is kept under: percent-escapes decoded (browsers send `"` and line breaks
    so, aiohttp's client every byte outside ASCII letters and digits), what follows the last `/`
    or `\\` (a browser may send the path), in NFC, without control or format characters, blanks at
    its ends trimmed; 422 unless it is then 1 to 255 characters and not `.` or `..`."""
    name = unquote(filename or "", errors="replace")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(c for c in name if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX or name in (".", ".."):
        raise _invalid("file", f"The file's name must be 1 to {NAME_MAX} characters.")
    return name


def served_type(head: bytes) -> str:
    """The content type of a file whose first bytes are `head`: the sniffed type when it is one
    no browser runs (`_INERT_TYPES`), else application/octet-stream."""
    if not head:
        return OCTET_STREAM
    try:
        sniffed = puremagic.from_string(head, mime=True).lower()
    except (puremagic.PureError, ValueError):
        return OCTET_STREAM
    if "svg" in sniffed or sniffed.endswith("xml"):  # image/svg+xml runs scripts
        return OCTET_STREAM
    if sniffed in _INERT_TYPES or sniffed.startswith(_INERT_PREFIXES):
        return sniffed
    return OCTET_STREAM


def usable(
    rows: Sequence[Mapping[str, Any]], wanted: Sequence[uuid.UUID], owner_sub: str
) -> list[Mapping[str, Any]]:
    """The rows of `wanted`, in its order, when each is a complete upload of `owner_sub` that
    no message has taken; else 422 naming the first other one. Another's upload, an unknown id
    and a used one get the same answer: the answer tells nothing about others' files."""
    by_id = {row["id"]: row for row in rows}
    out = []
    for index, attachment_id in enumerate(wanted):
        row = by_id.get(attachment_id)
        if (
            row is None
            or row["owner_sub"] != owner_sub
            or row["size"] is None
            or row["message_id"] is not None
        ):
            raise _invalid(
                f"attachment_ids.{index}",
                f"{attachment_id} is not one of your uploads, or a message already has it.",
            )
        out.append(row)
    return out


def content_disposition(name: str) -> str:
    """`attachment`, with the name in RFC 8187's encoding (`filename*`) and, for clients that
    know only `filename`, an ASCII stand-in without quotes, backslashes or percent signs."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in name)
    encoded = "".join(chr(b) if b in _ATTR_CHARS else f"%{b:02X}" for b in name.encode())
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def download_headers(*, name: str, size: int, content_type: str) -> dict[str, str]:
    """The headers of a download: a file, never a page (see the module's docstring)."""
    return {
        "Content-Type": content_type,
        "Content-Length": str(size),
        "Content-Disposition": content_disposition(name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        # Behind a login: no shared cache may keep it.
        "Cache-Control": "private, no-store",
    }
