"""A consumer callback cancelled in the middle of sending (what aiormq does to them when the
channel closes, e.g. a broker restart) still records the email as sent, so the redelivered event
does not send it a second time (found by tests/faults)."""

import asyncio
import uuid
from typing import Any

from services.notifier.api import DELIVERY
from shared import events
from shared.events import Envelope
from tests.notifier.conftest import Notifier
from tests.support.sealing import sealed
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_for


class Delivered:
    """The parts of an incoming AMQP message the notifier reads, and what it did with it."""

    def __init__(self, envelope: Envelope) -> None:
        self.body = envelope.model_dump_json().encode()
        self.message_id = str(envelope.id)
        self.type = envelope.type
        self.content_type = "application/json"
        self.correlation_id = uuid.uuid4().hex
        self.headers: dict[str, Any] = {}
        self.settled: list[str] = []

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append("nack")

    async def reject(self, requeue: bool = False) -> None:
        self.settled.append("reject")


async def test_a_callback_cancelled_after_the_relays_250_still_records_sent(
    notifier: Notifier, smtp: SmtpSink
) -> None:
    delivery = notifier.app[DELIVERY]
    recording = asyncio.Event()
    mark_sent = delivery._mark_sent

    async def slow_mark_sent(*args: Any) -> None:
        recording.set()
        await asyncio.sleep(0.5)  # widens the window between the 250 and "sent"
        await mark_sent(*args)

    delivery._mark_sent = slow_mark_sent  # type: ignore[method-assign]
    envelope = Envelope.wrap(
        events.PasswordRecoveryRequested(
            client_number="4242",
            email="cancel@example.com",
            language="es",
            reset_token=sealed("t"),
        )
    )
    message = Delivered(envelope)
    callback = asyncio.create_task(delivery.on_event(message))  # type: ignore[arg-type]
    await asyncio.wait_for(recording.wait(), 10)
    callback.cancel()  # as aiormq does when the channel closes
    await asyncio.gather(callback, return_exceptions=True)

    async def sent() -> bool:
        row = await notifier.email_row(envelope.id)
        return row is not None and row["status"] == "sent"

    await wait_for(sent, timeout=10, message="the email recorded as sent")
    assert len(smtp.received) == 1
