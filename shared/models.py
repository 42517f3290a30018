"""Base classes of the models that validate what users send."""

from functools import cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator


class RequestModel(BaseModel):
    """A request body or query: unknown fields are refused, and no text may hold a NUL or an
    unpaired surrogate, which PostgreSQL cannot store (they would otherwise fail at the insert)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError("text must not contain NUL characters")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError("text must be valid Unicode") from exc
        return value


class ResponseModel(BaseModel):
    model_config = ConfigDict(frozen=True)


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


@cache
def time_zones() -> frozenset[str]:
    """The IANA time zones this machine knows; read once, when first asked (it lists the zone
    files on disk)."""
    return frozenset(available_timezones())
