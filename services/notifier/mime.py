"""The notifier's emails written as bytes: headers, then a multipart/alternative of a plain-text
and an HTML part, both UTF-8 and quoted-printable.

Written here rather than through `email.message`: composing and flattening one email with
`EmailMessage` parses each header when it is set and again to fold it, which made it the largest
part of sending one; writing it directly costs next to nothing. It stays
small because the structure never varies, and safe because:
- every header goes through `header()`, which refuses a line break in a value and writes text
  that is not ASCII, or too long for one line, as RFC 2047 encoded words folded by
  `email.header.Header`;
- an address goes through `mailbox()`, which accepts exactly one address
  (`email.headerregistry.Address` parses it) and writes its domain in IDNA;
- the parts are encoded by `binascii.b2a_qp`, whose output never holds "=_", the start of the
  boundary, so a part cannot end the multipart early.
"""

import binascii
import functools
import uuid
from email.header import Header
from email.headerregistry import Address
from email.utils import formataddr

MAX_LINE = 78
CRLF = "\r\n"


def header(name: str, value: str) -> str:
    """`Name: value` as lines of at most 78 characters joined by CRLF; ValueError for a value
    holding a line break."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"a line break in the {name} header")
    if value.isascii() and "=?" not in value and len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}"
    charset = "us-ascii" if value.isascii() and "=?" not in value else "utf-8"
    return f"{name}: {Header(value, charset, header_name=name).encode(linesep=CRLF)}"


# Pure, and the same few recipients come back again and again; parsing an address is the
# costliest step left.
@functools.lru_cache(maxsize=4096)
def ascii_address(addr_spec: str) -> str:
    """The address with its domain in IDNA; ValueError unless it is one address whose local
    part is ASCII (we do not speak SMTPUTF8)."""
    parsed = Address(addr_spec=addr_spec)  # ValueError for anything but one addr-spec
    local, domain = parsed.username, parsed.domain
    if not local or not domain or not local.isascii():
        raise ValueError(f"not an address we can send to: {addr_spec!r}")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"not a domain we can send to: {domain!r}") from exc
    return Address(username=local, domain=domain).addr_spec  # quotes a local part that needs it


@functools.lru_cache(maxsize=4096)
def mailbox(display_name: str, addr_spec: str) -> str:
    """`Display Name <address>` for a To or From header (the name as encoded words if it is not
    ASCII); ValueError for anything but one address."""
    address = ascii_address(addr_spec)
    if not display_name:
        return address
    if display_name.isascii():
        return formataddr((display_name, address))
    return f"{Header(display_name, 'utf-8', header_name='To').encode(linesep=CRLF)} <{address}>"


def _part(subtype: str, text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n")  # one kind of line break
    encoded = binascii.b2a_qp(lines.encode("utf-8"), istext=True).decode("ascii")
    encoded = encoded.replace("\n", CRLF)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
        f"{encoded}{CRLF}"
    )


def two_part_email(headers: list[str], text: str, html: str) -> bytes:
    """The whole email: `headers` (from `header()`), then the text and HTML alternatives."""
    boundary = f"=_{uuid.uuid4().hex}"
    head = CRLF.join(
        [
            *headers,
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"',
        ]
    )
    return (
        f"{head}{CRLF}{CRLF}"
        f"--{boundary}{CRLF}{_part('plain', text)}"
        f"--{boundary}{CRLF}{_part('html', html)}"
        f"--{boundary}--{CRLF}"
    ).encode("ascii")
