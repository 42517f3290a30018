"""The headers of an inbound message: bounded on the raw bytes, then read in a worker process.

Python's `email` parser is quadratic on a header made of many encoded words (a 320 KB
`Precedence` took 11 s), so the header section is measured first, on the event loop, by a scan
that is linear and allocates little, and a message over SPEC §9.3's bounds is refused before
anything parses it. Only the measured section, and at most `QUOTE_READ_BYTES` of the body after
it, ever reach the parser (`read_headers`, run by `worker_pool` with a time limit). The body is
read only for the text the automatic answer quotes back (`quoted_text`); a body that cannot be
read gives no quote, never a refusal.
"""

from dataclasses import dataclass, replace
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr

from services.notifier.composer import QUOTE_MAX, clean_header_text, clean_message_ids, quotable

# SPEC §9.3: at most 64 KiB of headers, and 2,000 characters per header after unfolding.
MAX_HEADER_BYTES = 64 * 1024
MAX_FIELD_CHARS = 2000
# Of the body, what is parsed for the quote: the plain text comes first in nearly every message
# (alone, or first of a multipart/alternative), and 16 KiB hold QUOTE_MAX characters even
# base64-encoded. The bound is also the parser's work: a part's own headers are not bounded like
# the message's, and 16 KiB of encoded words in one takes about 0.15 s, far within the time limit.
QUOTE_READ_BYTES = 16 * 1024


class HeadersTooLarge(ValueError):
    """The header section is over SPEC §9.3's bounds (answered 552 at DATA)."""


def header_section(raw: bytes) -> bytes:
    """The header section of `raw`, up to (not including) the empty line that ends it.

    Lines end as the parser ends them (CRLF, LF or a lone CR), so what is measured here is all
    the parser will see. Raises `HeadersTooLarge`.
    """
    # Looking at one byte more than the bound tells "longer than the bound" from "ends there".
    window = raw[: MAX_HEADER_BYTES + 2]
    size = 0
    field: list[bytes] = []
    for line in window.splitlines(keepends=True):
        content = line.rstrip(b"\r\n")
        if not content:  # the empty line: the body follows
            break
        size += len(line)
        if size > MAX_HEADER_BYTES:
            raise HeadersTooLarge(f"headers over {MAX_HEADER_BYTES} bytes")
        if content[:1] not in (b" ", b"\t") and field:
            _check_field(field)
            field = []
        field.append(content)
    else:
        if len(raw) > len(window):
            raise HeadersTooLarge(f"headers over {MAX_HEADER_BYTES} bytes")
    if field:
        _check_field(field)
    return raw[:size]


def _check_field(lines: list[bytes]) -> None:
    """One header, unfolded (its line breaks removed, RFC 5322 §2.2.3): its value's characters,
    surrounding blanks aside, may not be more than MAX_FIELD_CHARS."""
    unfolded = b"".join(lines)
    name, colon, value = unfolded.partition(b":")
    value = value.strip(b" \t") if colon else unfolded
    # Bytes are at least as many as characters: decoding is needed only near the bound.
    if len(value) > MAX_FIELD_CHARS and len(value.decode("utf-8", "replace")) > MAX_FIELD_CHARS:
        shown = clean_header_text(name.decode("ascii", "replace"), 60) if colon else "?"
        raise HeadersTooLarge(f"header {shown!r} over {MAX_FIELD_CHARS} characters")


@dataclass(frozen=True)
class InboundHeaders:
    """What the notifier takes from an inbound message: nothing else of it is kept."""

    no_answer_reason: str | None
    subject: str = ""
    message_id: str | None = None
    references: tuple[str, ...] = ()
    header_from: str = ""
    # The message's plain text, bounded and cleaned (composer.quotable): "" when there is none.
    quote: str = ""


def read_headers(job: tuple[str, bytes] | tuple[str, bytes, bytes]) -> InboundHeaders:
    """(envelope sender, header section[, start of the body]) -> the fields we use. Runs in a
    worker process."""
    mail_from, section, *rest = job
    headers = _read_headers(mail_from, section)
    if rest and headers.no_answer_reason is None:
        headers = replace(headers, quote=quoted_text(section + rest[0][:QUOTE_READ_BYTES]))
    return headers


def quoted_text(message_head: bytes) -> str:
    """The plain text of a message (headers and the start of its body), decoded as its part
    says (an unknown charset or bad bytes are replaced, not fatal), for quoting; "" when it has
    no plain text part or cannot be read."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(message_head)
        part = message.get_body(preferencelist=("plain",))
        if part is None:
            return ""
        try:
            # Without a declared charset the standard says ASCII; mailers that write 8-bit text
            # that way mean UTF-8 nearly always.
            if part.get_content_charset() is None:
                raise LookupError("no charset")
            text = part.get_content()
        except (LookupError, UnicodeError, ValueError):
            text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
        return quotable(str(text)[: 2 * QUOTE_MAX])
    except Exception:  # a body we cannot read: no quote
        return ""


def _read_headers(mail_from: str, section: bytes) -> InboundHeaders:
    try:
        message = BytesParser(policy=policy.default).parsebytes(section, headersonly=True)
        ids = clean_message_ids(_header(message, "References"))
        own = clean_message_ids(_header(message, "Message-ID"))[-1:]
        return InboundHeaders(
            no_answer_reason=no_answer_reason(mail_from, message),
            subject=clean_header_text(_header(message, "Subject"), 200),
            message_id=own[0] if own else None,
            references=tuple([i for i in ids if i not in own] + own),
            header_from=parseaddr(_header(message, "From"))[1],
        )
    except Exception as exc:  # headers we cannot read: keep the fact, answer nobody
        return InboundHeaders(no_answer_reason=f"malformed headers ({type(exc).__name__})")


def _header(message: EmailMessage, name: str) -> str:
    value = message.get(name)
    return "" if value is None else str(value)


def no_answer_reason(mail_from: str, message: EmailMessage) -> str | None:
    """Why RFC 3834 forbids an automatic answer to this message (None: it allows one)."""
    if not mail_from or mail_from == "<>":
        return "null sender"
    auto = _header(message, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return "auto-submitted"
    if _header(message, "Precedence").strip().lower() in ("bulk", "list", "junk"):
        return "precedence"
    if message.get("List-Id") is not None:
        return "mailing list"
    try:
        Address(addr_spec=mail_from)
    except (ValueError, TypeError, IndexError):
        return "invalid sender"
    return None
