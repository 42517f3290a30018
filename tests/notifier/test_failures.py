"""The relay down, 4xx and 5xx: nothing lost, nothing sent twice, dead letters an admin replays."""

import aio_pika
from aiohttp.test_utils import TestClient

from services.notifier.delivery import DEAD_QUEUE
from shared import events, sealing
from tests.notifier.conftest import Notifier, Publisher, StartNotifier
from tests.support import stack
from tests.support.sealing import PUBLIC_KEY, sealed
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_for


def recovery(email: str, number: str = "2001") -> events.PasswordRecoveryRequested:
    return events.PasswordRecoveryRequested(
        client_number=number, email=email, language="es", reset_token=sealed(f"tok-{email}")
    )


def mid(envelope: events.Envelope) -> str:
    return f"<{envelope.id}@helpdesk.example>"


async def dead_letter_of(notifier: Notifier, envelope: events.Envelope) -> dict:
    async def found() -> list:
        return [r for r in await notifier.dead_letters() if r["event_id"] == envelope.id]

    [row] = await wait_for(found, message=f"a dead letter for {envelope.id}")
    return dict(row)


async def test_relay_down_for_a_while_loses_nothing_and_sends_each_once(
    start_notifier: StartNotifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    notifier = await start_notifier(retry_delays=[0.3, 0.6, 1.2, 2.4, 5.0])
    await smtp.stop()
    sent = [await publisher.event(recovery(f"down{i}@example.com")) for i in range(5)]

    async def all_retried() -> bool:
        rows = await notifier.pool.fetch("SELECT attempts, status FROM emails")
        return len(rows) == 5 and all(r["attempts"] >= 2 for r in rows)

    await wait_for(all_retried, timeout=15, message="every email tried twice")
    await smtp.start()  # same port
    await smtp.wait(5, timeout=15)
    for envelope in sent:
        assert len(smtp.with_id(mid(envelope))) == 1
    await wait_for(
        lambda: notifier.pool.fetchval("SELECT count(*) = 5 FROM emails WHERE status='sent'"),
        message="every email marked sent",
    )
    assert await notifier.dead_letters() == []


async def test_a_retrying_email_does_not_hold_back_the_others(
    start_notifier: StartNotifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    notifier = await start_notifier(retry_delays=[0.5, 1, 2, 4, 8])
    smtp.answer_for["slow@example.com"] = "451 4.3.0 Mailbox busy, try later"
    slow = await publisher.event(recovery("slow@example.com"))
    fast = [await publisher.event(recovery(f"fast{i}@example.com")) for i in range(10)]
    await smtp.wait(10, timeout=10)
    assert {r.message_id for r in smtp.received} == {mid(e) for e in fast}
    row = await notifier.email_row(slow.id)
    assert row["status"] in ("pending", "sending")
    del smtp.answer_for["slow@example.com"]
    await smtp.wait(1, address="slow@example.com", timeout=15)
    assert len(smtp.with_id(mid(slow))) == 1


async def test_retries_exhausted_put_the_email_in_the_dead_letters(
    start_notifier: StartNotifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    notifier = await start_notifier(retry_delays=[0.1, 0.1])
    smtp.answer = "451 4.3.0 Try again later"
    envelope = await publisher.event(recovery("tired@example.com"))
    row = await dead_letter_of(notifier, envelope)
    assert "retries exhausted" in row["reason"] and "451" in row["reason"]
    email = await notifier.email_row(envelope.id)
    assert (email["status"], email["attempts"]) == ("dead", 3)
    assert smtp.received == []


async def test_a_5xx_is_dead_lettered_and_an_admin_replays_it(
    admin_notifier: Notifier, auth: TestClient, publisher: Publisher, smtp: SmtpSink
) -> None:
    notifier, http = admin_notifier, admin_notifier.client
    smtp.answer = "550 5.1.1 Mailbox unavailable"
    envelope = await publisher.event(recovery("gone@example.com"), correlation_id="corr-550")
    row = await dead_letter_of(notifier, envelope)
    assert "550" in row["reason"]
    assert smtp.refused == 1 and smtp.received == []

    admin = await stack.bearer(auth, *stack.ADMIN)
    response = await http.get("/v1/dead-letters", headers=admin)
    assert response.status == 200
    listed = await response.json()
    assert [(d["id"], d["event_id"], d["event_type"]) for d in listed] == [
        (row["id"], str(envelope.id), "auth.password_recovery.requested")
    ]
    assert listed[0]["correlation_id"] == "corr-550"

    smtp.answer = None
    response = await http.post(f"/v1/dead-letters/{row['id']}/replay", headers=admin)
    assert response.status == 202, await response.text()
    assert (await response.json())["replayed_at"] is not None
    await smtp.wait(1, address="gone@example.com")
    [got] = smtp.to("gone@example.com")
    assert got.message_id == mid(envelope)
    assert got.message["X-Correlation-ID"] == "corr-550"

    response = await http.get("/v1/dead-letters", headers=admin)
    assert await response.json() == []
    response = await http.get("/v1/dead-letters?include_replayed=true", headers=admin)
    assert len(await response.json()) == 1
    response = await http.post(f"/v1/dead-letters/{row['id']}/replay", headers=admin)
    assert response.status == 409
    assert response.content_type == "application/problem+json"
    response = await http.post("/v1/dead-letters/999999/replay", headers=admin)
    assert response.status == 404
    await wait_for(
        lambda: notifier.pool.fetchval("SELECT status = 'sent' FROM emails"),
        message="the email marked sent",
    )
    assert len(smtp.with_id(mid(envelope))) == 1


async def test_dead_letter_routes_need_an_admin_token(
    admin_notifier: Notifier, auth: TestClient
) -> None:
    http = admin_notifier.client
    operator = await stack.bearer(auth, *stack.OPERATOR)
    for method, path in (("GET", "/v1/dead-letters"), ("POST", "/v1/dead-letters/1/replay")):
        response = await http.request(method, path)
        assert response.status == 401
        assert response.content_type == "application/problem+json"
        response = await http.request(method, path, headers={"Authorization": "Bearer nope"})
        assert response.status == 401
        response = await http.request(method, path, headers=operator)
        assert response.status == 403
        assert response.content_type == "application/problem+json"


async def test_openapi_documents_the_admin_routes(notifier: Notifier) -> None:
    response = await notifier.client.get("/openapi.json")
    document = await response.json()
    assert set(document["paths"]) == {
        "/v1/dead-letters",
        "/v1/dead-letters/{id}/replay",
        "/v1/deliveries",
        "/v1/deliveries/{id}/resend",
        "/v1/sealing-key",
    }
    replay = document["paths"]["/v1/dead-letters/{id}/replay"]["post"]
    assert {"401", "403", "404", "409"} <= set(replay["responses"])
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await notifier.client.get(path)).status == 200


async def test_what_rabbitmq_dead_letters_is_listed_and_replayable(
    admin_notifier: Notifier, auth: TestClient, publisher: Publisher, smtp: SmtpSink
) -> None:
    """A message RabbitMQ put in notifier.events.dead (here: over the delivery limit) is drained
    into the list; replayed, it is handled like any event."""
    envelope = events.Envelope.wrap(recovery("limit@example.com"))
    connection = await aio_pika.connect(publisher.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(),
                message_id=str(envelope.id),
                type=envelope.type,
                content_type="application/json",
                headers={"x-death": [{"reason": "delivery_limit", "queue": "notifier.events"}]},
            ),
            DEAD_QUEUE,
        )
    row = await dead_letter_of(admin_notifier, envelope)
    assert row["reason"] == "dead-lettered by RabbitMQ: delivery_limit"
    admin = await stack.bearer(auth, *stack.ADMIN)
    response = await admin_notifier.client.post(
        f"/v1/dead-letters/{row['id']}/replay", headers=admin
    )
    assert response.status == 202
    await smtp.wait(1, address="limit@example.com")
    assert len(smtp.with_id(mid(envelope))) == 1


async def test_a_token_not_sealed_for_this_notifier_is_never_sent(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    elsewhere = sealing.public_key_of(sealing.generate_private_key())
    bad = [
        await publisher.envelope(events.Envelope.wrap(data))
        for data in (
            # as an auth of v1 sent it: in plaintext
            recovery("plain@example.com").model_copy(update={"reset_token": "tok-plain"}),
            recovery("other@example.com").model_copy(
                update={"reset_token": sealing.seal(elsewhere, "tok")}
            ),
        )
    ]
    good = await publisher.event(recovery("sealed@example.com"))
    await smtp.wait(1)
    assert [m.message_id for m in smtp.received] == [mid(good)]
    for envelope in bad:
        letter = await dead_letter_of(notifier, envelope)
        assert "cannot be opened" in letter["reason"]
        assert "tok-" not in letter["reason"]


async def test_the_public_sealing_key_is_published(notifier: Notifier) -> None:
    response = await notifier.client.get("/v1/sealing-key")
    assert response.status == 200
    body = await response.json()
    assert body == {"algorithm": sealing.ALGORITHM, "public_key": PUBLIC_KEY}
