"""Opaque cursors for keyset pagination: the sort key of the last item of a page.

Keyset pagination is stable under concurrent inserts: a new row sorts before the cursor (newest
first) or after the page already read, so no item is repeated or skipped because of it.
"""

import base64
import json
from datetime import UTC, datetime
from typing import Any

from shared.errors import ValidationFailed


def encode_cursor(*values: Any) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> tuple[Any, ...]:
    """The values of a cursor made by `encode_cursor`, checked against `kinds`; 422 otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("wrong shape")
        out = []
        for value, kind in zip(values, kinds, strict=True):
            if kind is datetime:
                # Aware UTC, as PostgreSQL takes it; a time that cannot be (year 1 at +01:00)
                # fails here rather than at the query. Naive times are read as UTC.
                moment = datetime.fromisoformat(value)
                moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
                out.append(moment.astimezone(UTC))
            elif kind is int and isinstance(value, int) and not isinstance(value, bool):
                if not 0 <= value < 2**63:
                    raise ValueError("out of range")
                out.append(value)
            else:
                raise ValueError("wrong type")
        return tuple(out)
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError) as exc:
        message = "This cursor is not valid; start again from the first page."
        raise ValidationFailed(message, [{"field": "cursor", "message": message}]) from exc
