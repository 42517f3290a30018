"""tickets' event handlers: the local projection of each client's services."""

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
