"""One pydantic model per form; `parse` gives the model or each field's error message.

Error messages are msgids of the catalogues (English), translated when the page is rendered.
"""

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from shared.models import time_zones

REQUIRED = "This field is required."
TOO_LONG = "This text is too long."
CHOOSE = "Choose an option from the list."
INVALID = "This value is not valid."
PASSWORD_TOO_SHORT = "The password must have at least 15 characters."
PASSWORDS_DIFFER = "The two passwords are not the same."
WRONG_PASSWORD = "The current password is not correct."
SAME_EMAIL = "This is already your email."
TOO_MANY_TRIES = "Too many failed attempts. Wait a few minutes and try again."
BAD_EMAIL = "Enter a valid email address."
# The file field's errors (SPEC 9.4); `%(size)s` is the limit, in the reader's words.
FILE_TOO_LARGE = "Each file can have at most %(size)s."
TOO_MANY_FILES = "At most 5 files can be attached at once."
BAD_FILE_NAME = "A file's name is not valid: it must have 1 to 255 characters."
# A form's one-time id came back with another text (tickets answered 422 on Idempotency-Key).
ALREADY_SENT = (
    "This form had already been sent, and its first text was kept. "
    "Check the ticket, and send your text again if it is still missing."
)

_MESSAGES = {
    "missing": REQUIRED,
    "string_too_short": REQUIRED,
    "string_too_long": TOO_LONG,
    "int_parsing": CHOOSE,
    "int_type": CHOOSE,
    "greater_than": CHOOSE,
    "less_than": CHOOSE,
    "literal_error": CHOOSE,
    "string_pattern_mismatch": INVALID,
}


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError(REQUIRED)
    return text


def _email(text: str) -> str:
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError(BAD_EMAIL) from None


def _long_enough(text: str) -> str:
    if len(text) < 15:
        raise ValueError(PASSWORD_TOO_SHORT)
    return text


Required = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_not_blank)]
# A message: as tickets takes it (1 to 20,000 characters, not only blanks), kept as written.
Body = Annotated[str, Field(min_length=1, max_length=20_000), AfterValidator(_not_blank)]
Id = Annotated[int, Field(gt=0, lt=2**63)]
NewPassword = Annotated[str, Field(max_length=256), AfterValidator(_long_enough)]


class Form(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class LoginForm(Form):
    # A client number, or an operator's email.
    username: Annotated[str, Field(min_length=1, max_length=320), AfterValidator(_not_blank)]
    password: Required


class RecoveryForm(Form):
    email: Annotated[str, Field(min_length=1, max_length=320), AfterValidator(_email)]


class ResetForm(Form):
    token: Annotated[str, Field(min_length=1, max_length=256)]
    password: NewPassword
    password_repeat: Annotated[str, Field(max_length=256)]

    @model_validator(mode="after")
    def same_twice(self) -> "ResetForm":
        if self.password != self.password_repeat:
            raise ValueError(PASSWORDS_DIFFER)
        return self


class EmailChangeForm(Form):
    new_email: Annotated[str, Field(min_length=1, max_length=320), AfterValidator(_email)]
    current_password: Required


class PasswordChangeForm(Form):
    current_password: Required
    new_password: NewPassword
    new_password_repeat: Annotated[str, Field(max_length=256)]

    @model_validator(mode="after")
    def same_twice(self) -> "PasswordChangeForm":
        if self.new_password != self.new_password_repeat:
            raise ValueError(PASSWORDS_DIFFER)
        return self


class ProfileLanguageForm(Form):
    language: Literal["es", "en"]


# --- the admin's forms (SPEC 9.4) ---------------------------------------------------------------

Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]
Email = Annotated[str, Field(min_length=1, max_length=320), AfterValidator(_email)]
TOO_MANY_SERVICES = "At most 100 services, one per line, each of at most 200 characters."


def _service_lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 100 or any(len(line) > 200 for line in lines):
        raise ValueError(TOO_MANY_SERVICES)
    return lines


class ClientSearch(Form):
    q: Annotated[str, Field(max_length=200)] = ""
    cursor: Annotated[str, Field(max_length=200)] = ""


class NewClientForm(Form):
    name: Name
    email: Email
    language: Literal["es", "en"] = "es"
    # One service per line.
    services: Annotated[list[str], BeforeValidator(lambda v: _service_lines(str(v)))] = []


class ClientEditForm(Form):
    name: Name
    email: Email
    language: Literal["es", "en"]


class ServiceForm(Form):
    service: Name


class EnabledForm(Form):
    disabled: bool


class NewOperatorForm(Form):
    name: Name
    email: Email
    role: Literal["operator", "admin"]
    password: NewPassword


class RoleForm(Form):
    role: Literal["operator", "admin"]


class CategoryForm(Form):
    name: Name


class CannedReplyForm(Form):
    title: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_not_blank)]
    body: Body


class InsertCannedForm(Form):
    canned_id: Id
    body: Annotated[str, Field(max_length=20_000)] = ""


class EmailConfirmForm(Form):
    token: Annotated[str, Field(min_length=1, max_length=256)]


_SUBMISSION = re.compile(r"[0-9a-f]{32}")


def _submission(value: object) -> str | None:
    """A form's one-time id (macros.html `submission`); anything else counts as none."""
    return value if isinstance(value, str) and _SUBMISSION.fullmatch(value) else None


Submission = Annotated[str | None, BeforeValidator(_submission)]


class NewTicketForm(Form):
    service_id: Id
    category_id: Id
    body: Body
    allow_duplicate: bool = False
    submission: Submission = None


class MessageForm(Form):
    body: Body
    submission: Submission = None
    # The newest message the writer saw (the collision guard, SPEC 9.2); "" when not sent.
    if_last_message_id: Annotated[str, Field(pattern=r"^[0-9]{0,18}$")] = ""


class NoteForm(Form):
    note: Body


class AssignForm(Form):
    # An operator's id, or "" for nobody.
    operator_id: Annotated[str, Field(pattern=r"^([1-9][0-9]{0,17})?$")]


# The zones offered for dates: where a hosting provider's Spanish- and English-speaking clients are.
TIME_ZONES = (
    "Europe/Madrid",
    "Atlantic/Canary",
    "America/Argentina/Buenos_Aires",
    "America/Montevideo",
    "America/Santiago",
    "America/Lima",
    "America/Bogota",
    "America/Caracas",
    "America/Mexico_City",
    "America/New_York",
    "Europe/London",
    "UTC",
)

# Only a path of this site: never a redirect elsewhere.
LocalPath = Annotated[str, Field(pattern=r"^/([^/\\\s][^\s]*)?$", max_length=2000)]


class NextForm(Form):
    next: LocalPath = "/"


class LanguageForm(Form):
    language: Literal["es", "en"]
    next: LocalPath = "/"


def _known_zone(name: str) -> str:
    if name not in time_zones():
        raise ValueError(CHOOSE)
    return name


class TimeZoneForm(Form):
    # One of TIME_ZONES when chosen from the list; any zone the browser reports when detected.
    time_zone: Annotated[str, Field(max_length=64), AfterValidator(_known_zone)]
    next: LocalPath = "/"


StatusFilter = Literal["", "waiting", "open", "answered", "customer_reply", "closed"]


class ListFilter(Form):
    status: StatusFilter = ""
    # Operators: "me" ("Mis tickets"), "none" ("Sin asignar"), or everyone's.
    assignee: Literal["", "me", "none"] = ""
    client_number: Annotated[str, Field(pattern=r"^[0-9]{0,18}$")] = ""
    q: Annotated[str, Field(max_length=200)] = ""
    cursor: Annotated[str, Field(max_length=200)] = ""


F = TypeVar("F", bound=Form)


def parse(model: type[F], data: Mapping[str, Any]) -> tuple[F | None, dict[str, str]]:
    """(the form, {}) or (None, {field: message}); the message of a whole-form rule goes to the
    last field (e.g. the repeated password)."""
    values = {k: v for k, v in data.items() if isinstance(v, str)}
    try:
        return model.model_validate(values), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        last_field = list(model.model_fields)[-1]
        for err in exc.errors(include_url=False, include_input=False):
            field = str(err["loc"][0]) if err["loc"] else last_field
            if err["type"] == "value_error":
                message = str(err.get("ctx", {}).get("error", INVALID))
            else:
                message = _MESSAGES.get(err["type"], INVALID)
            errors.setdefault(field, message)
        return None, errors
