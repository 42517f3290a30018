"""tickets' event handlers: the local projections of each client's services and of the
operators (whom tickets may be assigned to)."""

import asyncpg
import structlog

from services.tickets import store
from shared import events
from shared.broker import QueueSpec
from shared.consumer import PoisonMessage

log = structlog.get_logger(__name__)

CONSUMER = "tickets.client-services"
# The clients' services, as auth announces them.
QUEUE = QueueSpec(
    "tickets.auth-client",
    (events.ClientCreated.routing_key, events.ClientUpdated.routing_key),
)


async def on_client_event(conn: asyncpg.Connection, envelope: events.Envelope) -> None:
    """auth.client.created / auth.client.updated: the client's services, as of the event."""
    try:
        data = envelope.parsed()
    except KeyError as exc:
        raise PoisonMessage(f"unexpected event type {envelope.type}") from exc
    if not isinstance(data, events.ClientCreated | events.ClientUpdated):
        raise PoisonMessage(f"unexpected event type {envelope.type}")
    if data.services is None:
        return  # an update of email or language: nothing tickets keeps
    if not await store.claim_services_version(conn, data.client_number, envelope.occurred_at):
        log.info("tickets.stale_services_ignored", client_number=data.client_number)
        return
    await store.replace_client_services(
        conn, data.client_number, [(s.id, s.name) for s in data.services]
    )


OPERATORS_CONSUMER = "tickets.operators"
# The operators, as auth announces them (each event their whole state).
OPERATORS_QUEUE = QueueSpec("tickets.auth-operator", (events.OperatorChanged.routing_key,))


async def on_operator_event(conn: asyncpg.Connection, envelope: events.Envelope) -> None:
    """auth.operator.changed: the operator as of the event, unless a newer state is kept."""
    try:
        data = envelope.parsed()
    except KeyError as exc:
        raise PoisonMessage(f"unexpected event type {envelope.type}") from exc
    if not isinstance(data, events.OperatorChanged):
        raise PoisonMessage(f"unexpected event type {envelope.type}")
    applied = await store.apply_operator(
        conn,
        operator_id=data.operator_id,
        name=data.name,
        role=data.role,
        disabled=data.disabled,
        as_of=envelope.occurred_at,
    )
    if not applied:
        log.info("tickets.stale_operator_ignored", operator_id=data.operator_id)
