"""shared.logging: one correlation id follows a piece of work from the HTTP request, through the
outbox and RabbitMQ, into the consumer's log context."""

import io
import json
import uuid

import aio_pika
import asyncpg
import structlog

from shared.consumer import idempotent_consumer
from shared.events import ClientCreated, Envelope
from shared.logging import bind_correlation_id, configure_logging, current_correlation_id
from tests.support.waiting import wait_for

QUEUE = "tickets.auth-client"


async def test_the_request_id_of_a_request_becomes_the_correlation_id_of_its_event(
    api, admin, event_tap
):
    response = await api.http.post(
        "/v1/clients",
        json={"name": "Correlated", "email": "corr@example.com", "services": []},
        headers={**admin, "X-Request-ID": "abc123"},
    )
    assert response.status == 201
    assert response.headers["X-Request-ID"] == "abc123"
    number = (await response.json())["client_number"]

    def ours() -> list[aio_pika.abc.AbstractIncomingMessage]:
        return [
            m
            for m in event_tap.messages
            if m.routing_key == "auth.client.created"
            and json.loads(m.body)["data"]["client_number"] == number
        ]

    [message] = await wait_for(ours, message="the client.created event")
    assert message.correlation_id == "abc123"


async def test_a_request_without_request_id_still_correlates_with_its_event(api, admin, event_tap):
    response = await api.http.post(
        "/v1/clients",
        json={"name": "Uncorrelated", "email": "unc@example.com", "services": []},
        headers=admin,
    )
    assert response.status == 201
    made = response.headers["X-Request-ID"]
    number = (await response.json())["client_number"]

    def ours():
        return [
            m
            for m in event_tap.messages
            if m.routing_key == "auth.client.created"
            and json.loads(m.body)["data"]["client_number"] == number
        ]

    [message] = await wait_for(ours, message="the client.created event")
    assert message.correlation_id == made


async def test_the_consumer_binds_the_messages_correlation_id_while_handling(
    amqp_url, channel, pool, start_consumer
):
    seen: list[tuple[str | None, dict]] = []

    async def handler(conn: asyncpg.Connection, env: Envelope) -> None:
        seen.append((current_correlation_id(), structlog.contextvars.get_contextvars()))

    await (await channel.get_queue(QUEUE)).purge()
    await start_consumer(QUEUE, idempotent_consumer("log-test", pool, handler))
    env = Envelope.wrap(
        ClientCreated(
            client_number="9", name="N", email="n@example.com", language="es", services=[]
        )
    )
    await channel.default_exchange.publish(
        aio_pika.Message(
            env.model_dump_json().encode(), message_id=str(env.id), correlation_id="from-amqp-7"
        ),
        routing_key=QUEUE,
    )

    await wait_for(lambda: seen, message="the event handled")
    [(correlation, context)] = seen
    assert correlation == "from-amqp-7"
    assert context["correlation_id"] == "from-amqp-7"


def test_json_log_lines_carry_the_service_and_correlation_id(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    try:
        configure_logging("svc-x", "json")
        correlation = bind_correlation_id(None)
        structlog.get_logger("t").info("something.happened", ticket=12)
    finally:
        monkeypatch.undo()
        configure_logging("tests", "console")

    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["event"] == "something.happened"
    assert line["service"] == "svc-x"
    assert line["correlation_id"] == correlation
    assert uuid.UUID(correlation)
    assert line["ticket"] == 12 and line["level"] == "info" and "timestamp" in line
