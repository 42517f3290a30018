"""tickets' request and response models; they validate input and generate the OpenAPI document."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, RootModel

from services.tickets.attachments import MAX_PER_MESSAGE
from services.tickets.lifecycle import STATUSES, Status
from shared.models import Name, RequestModel, ResponseModel

_STATUS = "|".join(STATUSES)
DbId = Annotated[int, Field(gt=0, lt=2**63)]


def _not_blank(body: str) -> str:
    if not body.strip():
        raise ValueError("the message must not be empty")
    return body


# Kept exactly as written (no trimming); shown escaped everywhere.
Body = Annotated[str, Field(min_length=1, max_length=20_000), AfterValidator(_not_blank)]


def _distinct(ids: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(set(ids)) != len(ids):
        raise ValueError("the same file is named twice")
    return ids


# The caller's own uploads that no message has taken yet (POST /v1/attachments).
AttachmentIds = Annotated[
    list[uuid.UUID], Field(max_length=MAX_PER_MESSAGE), AfterValidator(_distinct)
]


class CategoryIn(RequestModel):
    name: Name


class Category(ResponseModel):
    id: int
    name: str


class CategoryList(RootModel[list[Category]]):
    pass


class TicketCreate(RequestModel):
    service_id: DbId
    category_id: DbId
    body: Body
    allow_duplicate: bool = False
    attachment_ids: AttachmentIds = []


class MessageIn(RequestModel):
    body: Body
    attachment_ids: AttachmentIds = []


class Attachment(ResponseModel):
    """A file (SPEC 9.2); `content_type` is what it is served as (tickets/attachments.py)."""

    id: uuid.UUID
    name: str
    size: int
    content_type: str


class Author(ResponseModel):
    kind: Literal["client", "operator"]
    name: str


class Message(ResponseModel):
    id: int
    author: Author
    body: str
    created_at: datetime
    # A default, so that answers stored for Idempotency-Key replays before files existed still
    # read back.
    attachments: list[Attachment] = []


class ServiceRef(ResponseModel):
    id: int
    name: str


class TicketFields(ResponseModel):
    """What a ticket is, in lists and on its own page alike."""

    number: int
    client_number: str
    service: ServiceRef
    category: Category
    subject: str
    status: Status
    created_at: datetime
    updated_at: datetime


class TicketSummary(TicketFields):
    excerpt: str


class Ticket(TicketFields):
    messages: list[Message]


class TicketPage(ResponseModel):
    items: list[TicketSummary]
    next_cursor: str | None


class TicketQuery(RequestModel):
    """`status` is a comma list; `client_number` is for operators; `q` searches the messages (a
    client searches their own tickets only); `sort=waiting` is the operator queue (longest wait
    first) instead of newest activity first."""

    status: Annotated[str, Field(pattern=rf"^({_STATUS})(,({_STATUS}))*$")] | None = None
    # Leading zeros dropped, as auth does for the username, so `0100001` finds client 100001.
    client_number: (
        Annotated[str, Field(pattern=r"^[0-9]{1,18}$"), AfterValidator(lambda v: str(int(v)))]
        | None
    ) = None
    q: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, Field(max_length=200)] | None = None
    sort: Literal["activity", "waiting"] = "activity"

    @property
    def statuses(self) -> list[str] | None:
        return sorted(set(self.status.split(","))) if self.status else None
