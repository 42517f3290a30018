"""One frozen pydantic model per routing key of SPEC §6, used by producer and consumer alike.

Consumers ignore unknown fields (adding a field is not a breaking change); a breaking change
is a new `version`.
"""

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

EXCHANGE = "helpdesk.events"


class EventData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    routing_key: ClassVar[str]


class ServiceRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    id: int
    name: str


class AttachmentRef(BaseModel):
    """A file attached to a message (SPEC 9.2): named in emails with a panel link, never sent."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    id: uuid.UUID
    name: str
    size: int
    content_type: str


class Assignee(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    id: int
    name: str


class ClientCreated(EventData):
    routing_key = "auth.client.created"
    client_number: str
    name: str
    email: str
    language: str
    services: list[ServiceRef]
    set_password_token: str | None = None


class ClientUpdated(EventData):
    routing_key = "auth.client.updated"
    client_number: str
    name: str | None = None  # an admin's change (SPEC 9.1)
    email: str | None = None
    language: str | None = None
    services: list[ServiceRef] | None = None


class OperatorChanged(EventData):
    """An operator's whole state after it was created or changed by an admin: tickets keeps the
    operators it may assign tickets to (SPEC 9.2), without asking auth."""

    routing_key = "auth.operator.changed"
    operator_id: int
    name: str
    role: Literal["operator", "admin"]
    disabled: bool = False


class PasswordRecoveryRequested(EventData):
    routing_key = "auth.password_recovery.requested"
    client_number: str
    email: str
    language: str
    reset_token: str


class EmailChangeRequested(EventData):
    """A client asked to make `new_email` their primary email: the confirmation link goes there
    (SPEC 9.1); until it is used, everything keeps going to the old address."""

    routing_key = "auth.email_change.requested"
    client_number: str
    name: str
    new_email: str
    language: str
    confirm_token: str


class EmailChangeNotice(EventData):
    """The same request told to the current (old) address, without the link."""

    routing_key = "auth.email_change.notice"
    client_number: str
    name: str
    email: str
    new_email: str
    language: str


class TicketCreated(EventData):
    routing_key = "tickets.ticket.created"
    number: int
    client_number: str
    subject: str
    service: ServiceRef
    body: str
    attachments: list[AttachmentRef] = []


class TicketReplied(EventData):
    routing_key = "tickets.ticket.replied"
    number: int
    client_number: str
    subject: str
    message_id: int
    author_kind: Literal["client", "operator"]
    author_name: str
    body: str
    # Kept a plain string: a consumer must see (and dead-letter) a channel it does not know.
    channel: str
    # The first words of the client's query (`summary` of the ticket), for email subjects.
    summary: str = ""
    attachments: list[AttachmentRef] = []


class TicketReopened(EventData):
    routing_key = "tickets.ticket.reopened"
    number: int
    client_number: str
    body: str
    attachments: list[AttachmentRef] = []


class TicketClosed(EventData):
    routing_key = "tickets.ticket.closed"
    number: int
    client_number: str
    closed_by: str  # "client", "operator" or "system" (auto-close, SPEC 9.2)
    subject: str = ""
    summary: str = ""
    # The operator who closed it (closed_by "operator"), for the client's notice.
    closed_by_name: str | None = None


class TicketNoted(EventData):
    """An operator's internal note (SPEC 9.2). Its text stays out of the event: notes are never
    emailed, and consumers need to know only that one was written."""

    routing_key = "tickets.ticket.noted"
    number: int
    client_number: str
    note_id: int
    author_name: str


class TicketAssigned(EventData):
    routing_key = "tickets.ticket.assigned"
    number: int
    client_number: str
    # Absent (None) when the ticket was unassigned: Envelope.wrap leaves out None fields.
    assignee: Assignee | None = None
    assigned_by: str


class EmailRejected(EventData):
    routing_key = "notifier.email.rejected"
    from_: str = Field(alias="from")
    ticket_number: int | None = None
    reason: str

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.routing_key: cls
    for cls in (
        ClientCreated,
        ClientUpdated,
        OperatorChanged,
        PasswordRecoveryRequested,
        EmailChangeRequested,
        EmailChangeNotice,
        TicketCreated,
        TicketReplied,
        TicketReopened,
        TicketClosed,
        TicketNoted,
        TicketAssigned,
        EmailRejected,
    )
}


class Envelope(BaseModel):
    """What travels on the wire: `{"id", "type", "version", "occurred_at", "data"}`."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    id: uuid.UUID
    type: str
    version: int = 1
    occurred_at: datetime
    data: dict[str, Any]

    @classmethod
    def wrap(cls, data: EventData) -> "Envelope":
        return cls(
            id=uuid.uuid4(),
            type=data.routing_key,
            occurred_at=datetime.now(UTC),
            # Optional fields left unset are absent, not null: `auth.client.updated` carries only
            # what changed, and a consumer may read a present `services` as "replace them".
            data=data.model_dump(mode="json", by_alias=True, exclude_none=True),
        )

    def parsed(self) -> EventData:
        """The typed data of a known routing key (raises ValidationError or KeyError)."""
        return EVENT_TYPES[self.type].model_validate(self.data)
