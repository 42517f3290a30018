"""auth's request and response models; they validate input and generate the OpenAPI document."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, EmailStr, Field

from shared.models import Name, RequestModel, ResponseModel, time_zones

Language = Literal["es", "en"]
Password = Annotated[str, Field(min_length=15, max_length=256)]
# What a user typed at login may be anything; only its size is bounded.
AnyPassword = Annotated[str, Field(min_length=1, max_length=1024)]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=256)]


class TokenRequest(RequestModel):
    # A client number may arrive as a JSON number; it is read as text.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)
    username: Annotated[str, Field(min_length=1, max_length=320)]
    password: AnyPassword


class TokenPair(ResponseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str


class RefreshRequest(RequestModel):
    refresh_token: OpaqueToken


class ServiceIn(RequestModel):
    name: Name


class ServiceOut(ResponseModel):
    id: int
    name: str


class ClientCreate(RequestModel):
    name: Name
    email: EmailStr
    language: Language = "es"
    services: Annotated[list[ServiceIn], Field(max_length=100)] = []
    password: Password | None = None


class ClientOut(ResponseModel):
    client_number: str
    name: str
    email: str
    language: Language
    services: list[ServiceOut]
    disabled: bool = False
    created_at: datetime


class ClientPage(ResponseModel):
    items: list[ClientOut]
    next_cursor: str | None


class ClientQuery(RequestModel):
    """`q` matches the client number exactly, or a part of the name or the email."""

    q: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, Field(max_length=200)] | None = None


class ClientPatch(RequestModel):
    """An admin's change; absent fields stay. The email changes at once (no confirmation: the
    admin is trusted to have checked it). A disabled client cannot log in or refresh."""

    name: Name | None = None
    email: EmailStr | None = None
    language: Language | None = None
    disabled: bool | None = None


class OperatorCreate(RequestModel):
    email: EmailStr
    name: Name
    role: Literal["operator", "admin"]
    password: Password


class OperatorOut(ResponseModel):
    id: int
    email: str
    name: str
    role: Literal["operator", "admin"]
    language: Language
    disabled: bool = False


class OperatorPage(ResponseModel):
    items: list[OperatorOut]
    next_cursor: str | None


class PageQuery(RequestModel):
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, Field(max_length=200)] | None = None


class OperatorPatch(RequestModel):
    """An admin's change; absent fields stay. The last enabled admin can be neither demoted
    nor disabled (409)."""

    name: Name | None = None
    role: Literal["operator", "admin"] | None = None
    disabled: bool | None = None


class Profile(ResponseModel):
    """`client_number` and `services` for clients, `operator_id` and `role` for operators."""

    kind: Literal["client", "operator"]
    client_number: str | None = None
    operator_id: int | None = None
    name: str
    email: str
    language: Language
    role: Literal["operator", "admin"] | None = None
    services: list[ServiceOut] | None = None
    # Where the panel shows the account's dates (null: the panel's default).
    time_zone: str | None = None


def _known_zone(name: str) -> str:
    if name not in time_zones():
        raise ValueError("not a time zone of the IANA database, e.g. Europe/Madrid")
    return name


class ProfileUpdate(RequestModel):
    """The email is changed with `EmailChange` (SPEC 9.1), never here. A client changes its
    language and time zone; an operator its time zone (its language is an admin's to set)."""

    language: Language | None = None
    time_zone: Annotated[str, Field(max_length=64), AfterValidator(_known_zone)] | None = None


class EmailChange(RequestModel):
    """Without `current_password` (absent or empty) the answer is 400, as for a wrong one."""

    email: EmailStr
    current_password: Annotated[str, Field(max_length=1024)] | None = None


class EmailConfirmation(RequestModel):
    token: OpaqueToken


class PasswordChange(RequestModel):
    current_password: AnyPassword
    new_password: Password


class RecoveryRequest(RequestModel):
    email: EmailStr


class PasswordReset(RequestModel):
    token: OpaqueToken
    password: Password


class Jwk(ResponseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    kty: str
    kid: str
    alg: str
    use: str


class Jwks(ResponseModel):
    keys: list[Jwk]
