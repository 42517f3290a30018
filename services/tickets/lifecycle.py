"""The ticket lifecycle as plain rules, tested without I/O.

Statuses: `open` (new or reopened), `answered` (an operator replied last), `customer_reply`
(the client replied last), `closed`. Who may do what:

| action  | client (owner)                      | operator                            |
|---------|-------------------------------------|-------------------------------------|
| open    | `open`, unless a ticket about the   | no (403): tickets are the clients'  |
|         | same service and category is not    |                                     |
|         | closed (409, or `allow_duplicate`)  |                                     |
| reply   | unless closed (409: reopen it)      | always; the ticket is `answered`    |
| reopen  | only when closed, with text         | no (403): reopening is the client's |
| close   | unless already closed (409)         | unless already closed (409)         |
"""

from typing import Literal

from shared.errors import Conflict, Forbidden

Status = Literal["open", "answered", "customer_reply", "closed"]
STATUSES: tuple[Status, ...] = ("open", "answered", "customer_reply", "closed")
Kind = Literal["client", "operator"]


def status_of_new_ticket(open_ticket: int | None, *, allow_duplicate: bool) -> Status:
    """A new ticket is `open`; 409 naming `open_ticket`, the client's ticket about the same
    service and category that is not closed yet, unless the client asked for a second one."""
    if open_ticket is not None and not allow_duplicate:
        raise Conflict(
            f"Ticket #{open_ticket} about this service and category is still open; "
            "add to it instead, or send allow_duplicate to open another.",
            open_ticket=open_ticket,
        )
    return "open"


def status_after_reply(current: Status, author: Kind) -> Status:
    if author == "client":
        if current == "closed":
            raise Conflict("This ticket is closed; reopen it to add to it.")
        return "customer_reply"
    return "answered"


def status_after_reopen(current: Status, author: Kind) -> Status:
    if author != "client":
        raise Forbidden("Only the client who opened a ticket can reopen it.")
    if current != "closed":
        raise Conflict("Only a closed ticket can be reopened; reply to it instead.")
    return "open"


def status_after_close(current: Status) -> Status:
    if current == "closed":
        raise Conflict("This ticket is already closed.")
    return "closed"


def is_waiting(status: Status) -> bool:
    """Whether the client is waiting for an operator (the ticket belongs in the queue)."""
    return status in ("open", "customer_reply")


EXCERPT_LENGTH = 160


def excerpt(body: str) -> str:
    """The start of a message, on one line, for lists."""
    flat = " ".join(body.split())
    return flat if len(flat) <= EXCERPT_LENGTH else flat[: EXCERPT_LENGTH - 1].rstrip() + "…"
