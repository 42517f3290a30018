"""tickets' request and response models; they validate input and generate the OpenAPI document."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, RootModel, StringConstraints, model_validator

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


class ReplyIn(MessageIn):
    """`if_last_message_id`: the newest message the author saw; 409 with `last_message_id`
    when the ticket has a newer one (the collision guard)."""

    if_last_message_id: DbId | None = None


class CloseIn(RequestModel):
    """The body of a close is optional: without one, the ticket is closed as it is."""

    if_last_message_id: DbId | None = None


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


class Closure(ResponseModel):
    """A time the ticket was closed: by the client, an operator (named) or the system."""

    by: Literal["client", "operator", "system"]
    name: str | None
    at: datetime


class NoteIn(RequestModel):
    body: Body


class Note(ResponseModel):
    """An internal note: operators' only, never the client's to see."""

    id: int
    author: Author
    body: str
    created_at: datetime


class AssignIn(RequestModel):
    """`null` unassigns the ticket."""

    operator_id: DbId | None


class Assignee(ResponseModel):
    id: int
    name: str


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
    # The first words of the client's query (for email subjects and lists); "" in answers an
    # idempotency key stored before tickets kept it.
    summary: str = ""


class TicketSummary(TicketFields):
    excerpt: str


class OperatorTicketSummary(TicketSummary):
    """What operators see in lists: the client's view, the assignee, and since when the client
    has been waiting for an answer (null when the client is not waiting)."""

    assignee: Assignee | None
    waiting_since: datetime | None = None


class Ticket(TicketFields):
    messages: list[Message]
    # Each closing, oldest first; their times place them among the messages.
    closures: list[Closure] = []


class OperatorTicket(Ticket):
    """What operators see of a ticket: the client's view, the assignee and the internal
    notes (oldest first; their times place them among the messages)."""

    assignee: Assignee | None
    notes: list[Note]


class TicketView(RootModel[OperatorTicket | Ticket]):
    """A ticket as its reader may see it: operators get `assignee` and `notes`, clients never."""


class TicketPage(ResponseModel):
    # Operators' items carry `assignee`; a client's never do.
    items: list[OperatorTicketSummary | TicketSummary]
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
    # Operators only: `me`, `none` (unassigned) or an operator's id.
    assignee: Annotated[str, Field(pattern=r"^(me|none|[1-9][0-9]{0,17})$")] | None = None

    @property
    def statuses(self) -> list[str] | None:
        return sorted(set(self.status.split(","))) if self.status else None


# --- category management and canned replies (SPEC 9.2) -----------------------------------------


class CategoryQuery(RequestModel):
    """`include_disabled=true` (operators and admins) lists the disabled categories too."""

    include_disabled: bool = False


class CategoryState(Category):
    """A category as admins manage it: a disabled one is not offered for new tickets."""

    disabled: bool


class CategoryList(RootModel[list[CategoryState | Category]]):
    """Without `include_disabled`, `[{"id", "name"}]` as SPEC §5 gives it; with it, each item
    also says whether it is `disabled`."""


class CategoryPatch(RequestModel):
    name: Name | None = None
    disabled: bool | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> "CategoryPatch":
        if self.name is None and self.disabled is None:
            raise ValueError("send `name`, `disabled` or both")
        return self


CannedTitle = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class CannedReplyIn(RequestModel):
    title: CannedTitle
    body: Body


class CannedReplyPatch(RequestModel):
    title: CannedTitle | None = None
    body: Body | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> "CannedReplyPatch":
        if self.title is None and self.body is None:
            raise ValueError("send `title`, `body` or both")
        return self


class CannedReply(ResponseModel):
    id: int
    title: str
    body: str


class CannedReplyList(RootModel[list[CannedReply]]):
    pass
