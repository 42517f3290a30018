"""The ticket lifecycle as plain rules, tested without I/O.

Statuses: `open` (new or reopened), `answered` (an operator replied last), `customer_reply`
(the client replied last), `closed`. Who may do what:

| action  | client (owner)                    | operator                          |
|---------|-----------------------------------|-----------------------------------|
| reply   | unless closed (409: reopen it)    | always; the ticket is `answered`  |
| reopen  | only when closed, with text       | no (403): reopening is the client's |
| close   | unless already closed (409)       | unless already closed (409)       |
"""

from typing import Literal, get_args

from shared.errors import Conflict, Forbidden

Status = Literal["open", "answered", "customer_reply", "closed"]
STATUSES: tuple[Status, ...] = ("open", "answered", "customer_reply", "closed")
Kind = Literal["client", "operator"]


def status_after_reply(current: Status, author: Kind) -> Status:
    if author == "client":
        if current == "closed":
            raise Conflict("This ticket is closed; reopen it to add to it.")
        return "customer_reply"
    return "answered"


def statuses_after_reply(author: Kind) -> dict[Status, Status]:
    """`status_after_reply` as a table, from each status it allows a reply in: for the database,
    which applies it to the ticket it has locked (store.add_reply)."""
    after: dict[Status, Status] = {}
    for status in STATUSES:
        try:
            after[status] = status_after_reply(status, author)
        except Conflict:
            continue
    return after


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


WAITING: tuple[Status, ...] = tuple(s for s in STATUSES if is_waiting(s))
# `statuses_after_reply` for each author, made once: every reply sends its author's.
STATUS_AFTER_REPLY: dict[Kind, dict[Status, Status]] = {
    kind: statuses_after_reply(kind) for kind in get_args(Kind)
}


EXCERPT_LENGTH = 160


def excerpt(body: str) -> str:
    """The start of a message, on one line, for lists."""
    flat = " ".join(body.split())
    return flat if len(flat) <= EXCERPT_LENGTH else flat[: EXCERPT_LENGTH - 1].rstrip() + "…"
