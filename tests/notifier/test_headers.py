"""SPEC §9.3's header bounds, measured on the raw bytes before anything parses them, and the
rules of what an automatic answer echoes and whom it counts against."""

import time

import pytest

from services.notifier.headers import (
    MAX_FIELD_CHARS,
    MAX_HEADER_BYTES,
    QUOTE_READ_BYTES,
    HeadersTooLarge,
    header_section,
    quoted_text,
    read_headers,
)
from services.notifier.inbound import client_address, echoed_subject


def folded(name: str, value: str, width: int = 76) -> bytes:
    """`name: value` folded into lines of about `width` (at spaces, as RFC 5322 allows)."""
    lines, line = [], f"{name}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > width and line != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode()


def words(count: int, word: str = "=?utf-8?q?a?=") -> str:
    return " ".join([word] * count)


BODY = b"\r\nHola.\r\n"


def test_a_plain_message_gives_its_header_section_without_the_body() -> None:
    raw = b"From: a@example.com\r\nSubject: Hola\r\n" + BODY
    assert header_section(raw) == b"From: a@example.com\r\nSubject: Hola\r\n"


def test_the_body_is_never_measured() -> None:
    raw = b"Subject: Hola\r\n\r\n" + b"a" * 70 + b"\r\n" * 15_000
    assert header_section(raw) == b"Subject: Hola\r\n"


def test_a_header_of_2000_characters_unfolded_is_accepted_and_one_more_refused() -> None:
    exact = "x" * (MAX_FIELD_CHARS - 1000) + " " + "y" * 999  # 2000 characters with the space
    assert len(exact) == MAX_FIELD_CHARS
    header_section(folded("Subject", exact) + BODY)
    with pytest.raises(HeadersTooLarge, match="'Subject'"):
        header_section(folded("Subject", exact + "z") + BODY)


def test_the_character_bound_counts_characters_not_bytes() -> None:
    spanish = " ".join(["señoría"] * (MAX_FIELD_CHARS // 8))  # more bytes than characters
    assert len(spanish) <= MAX_FIELD_CHARS < len(spanish.encode())
    header_section(folded("Subject", spanish) + BODY)


def test_an_encoded_word_header_bomb_is_refused_at_once() -> None:
    for name in ("Subject", "Precedence", "References"):
        raw = folded(name, words(80_000)) + BODY  # about 1 MiB, a single header
        started = time.perf_counter()
        with pytest.raises(HeadersTooLarge):
            header_section(raw)
        assert time.perf_counter() - started < 0.5, "the scan is linear and cheap"


def test_headers_over_64_kib_in_all_are_refused_even_in_short_headers() -> None:
    header = b"X-Note: " + b"n" * 60 + b"\r\n"
    fits = header * (MAX_HEADER_BYTES // len(header))
    assert header_section(fits + BODY) == fits
    with pytest.raises(HeadersTooLarge, match="bytes"):
        header_section(fits + header + BODY)


def test_a_message_without_an_empty_line_is_all_headers() -> None:
    assert header_section(b"Subject: only headers\r\n") == b"Subject: only headers\r\n"
    with pytest.raises(HeadersTooLarge):
        header_section(b"X: y\r\n" * (MAX_HEADER_BYTES // 6 + 1))


@pytest.mark.parametrize("newline", [b"\n", b"\r"], ids=["lf", "cr"])
def test_other_line_ends_are_lines_too(newline: bytes) -> None:
    # The parser takes a lone CR or LF as a line end: so must the measure.
    long = b"Subject:" + newline.join([b" " + b"a" * 70] * 40) + newline
    with pytest.raises(HeadersTooLarge):
        header_section(long + newline + b"body")
    assert header_section(b"Subject: hi" + newline + newline + b"body") == b"Subject: hi" + newline


def test_read_headers_takes_the_fields_we_use() -> None:
    section = header_section(
        b"From: Juana <juana@example.com>\r\nSubject: =?utf-8?q?Re=3A_=5B#42=5D_Hola?=\r\n"
        b"Message-ID: <m1@example.com>\r\nReferences: <r0@x> <r1@x>\r\n" + BODY
    )
    headers = read_headers(("juana@example.com", section))
    assert headers.no_answer_reason is None
    assert headers.subject == "Re: [#42] Hola"
    assert headers.references == ("<r0@x>", "<r1@x>", "<m1@example.com>")
    assert headers.header_from == "juana@example.com"
    assert read_headers(("", section)).no_answer_reason == "null sender"


def test_the_quote_is_the_plain_text_decoded_cleaned_and_bounded() -> None:
    head = b"From: a@example.com\r\nSubject: x\r\n"
    raw = head + "\r\n  Hola\x00 \u202e\r\nmundo\x07  \r\n".encode()
    assert quoted_text(raw) == "Hola \nmundo"  # control and bidi characters dropped
    assert len(quoted_text(head + b"\r\n" + b"palabra " * 1000)) == 2000
    unknown = head + b"Content-Type: text/plain; charset=x-nonsense\r\n\r\nacci\xf3n\r\n"
    assert quoted_text(unknown) == "acci\ufffdn"
    html_only = head + b"Content-Type: text/html\r\n\r\n<p>Hola</p>\r\n"
    assert quoted_text(html_only) == ""
    broken = head + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSG9s"
    assert isinstance(quoted_text(broken), str)


def test_read_headers_quotes_only_a_message_that_may_be_answered() -> None:
    section = b"From: a@example.com\r\nSubject: x"
    body = b"\r\n\r\nTexto del cliente\r\n"
    assert read_headers(("a@example.com", section, body)).quote == "Texto del cliente"
    assert read_headers(("", section, body)).quote == ""  # null sender: no answer at all
    assert read_headers(("a@example.com", section)).quote == ""
    far = b"\r\n\r\n" + b" " * QUOTE_READ_BYTES + b"lejos"
    assert read_headers(("a@example.com", section, far)).quote == ""


def test_the_echoed_subject_is_cut_to_100_characters() -> None:
    assert echoed_subject("Re: RE: " + "a" * 300) == "a" * 100
    assert echoed_subject("Re: ") == "(sin asunto)"


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        (("203.0.113.7", 40000), "203.0.113.7"),
        (("::ffff:203.0.113.7", 40000, 0, 0), "203.0.113.7"),
        (("2001:db8:1:2:aaaa::1", 40000, 0, 0), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:bbbb::9", 40000, 0, 0), "2001:db8:1:2::/64"),
        (None, None),
    ],
)
def test_answers_are_counted_per_ip_or_ipv6_slash_64(peer: object, address: str | None) -> None:
    assert client_address(peer) == address
