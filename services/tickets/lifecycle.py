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

Operators also write internal notes (never the client's to see; they change no status) and
assign tickets. A reply or a close may name the newest message its author saw
(`if_last_message_id`): when a newer one exists it is refused (409, the collision guard).
"""

from typing import Literal

from shared.errors import Conflict, Forbidden, ValidationFailed

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


SUMMARY_LENGTH = 60


def summary(body: str) -> str:
    """The first words of a client's query, on one line (the ticket's `summary`, for email
    subjects): at most SUMMARY_LENGTH characters, cut after a whole word, then "…". Migration
    0008 filled the tickets older than it with the same rule in SQL."""
    flat = " ".join(body.split())
    if len(flat) <= SUMMARY_LENGTH:
        return flat
    head = flat[: SUMMARY_LENGTH + 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else flat[:SUMMARY_LENGTH]
    return cut + "…"


def check_last_message(seen: int | None, last: int) -> None:
    """The collision guard: 409 with `last_message_id` when `seen` (the caller's
    `if_last_message_id`, if given) is not the ticket's newest message, so that an operator
    never answers or closes a ticket without having seen its newest message."""
    if seen is not None and seen != last:
        raise Conflict(
            "This ticket has a message you have not seen; read it before answering.",
            last_message_id=last,
        )


def check_assignee(*, known: bool, disabled: bool) -> None:
    """A ticket is assigned only to an operator tickets knows (from auth's events) and who is
    not disabled; 422 otherwise."""
    if not known or disabled:
        message = "There is no such operator." if not known else "This operator is disabled."
        raise ValidationFailed(message, [{"field": "operator_id", "message": message}])
