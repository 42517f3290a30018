"""shared.http as auth (the real service) serves it: problem+json for every failure, request
ids, health, readiness and metrics."""

import re

import pytest

from shared.http import MAX_BODY_BYTES
from shared.resources import BROKER
from tests.support.waiting import wait_for

PROBLEM = "application/problem+json"


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    body = await response.json(content_type=None)
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def test_an_unknown_address_answers_404_problem_json(auth):
    body = await problem(await auth.get("/no/such/thing"), 404)
    assert body["title"] == "Not Found"


async def test_a_wrong_method_answers_405_problem_json_with_allow(auth):
    response = await auth.delete("/v1/token")
    await problem(response, 405)
    assert "POST" in response.headers["Allow"]


async def test_a_body_over_one_mebibyte_answers_413_problem_json(auth):
    response = await auth.post(
        "/v1/token",
        data=b'{"username": "' + b"x" * MAX_BODY_BYTES + b'"}',
        headers={"Content-Type": "application/json"},
    )
    await problem(response, 413)


async def test_a_body_just_under_the_limit_is_read_and_validated(auth):
    response = await auth.post(
        "/v1/token",
        data=b'{"username": "' + b"x" * (MAX_BODY_BYTES - 100) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    await problem(response, 422)  # read (not 413), then refused as invalid


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_json_answers_415_problem_json(auth, content_type):
    response = await auth.post(
        "/v1/token", data=b"username=a&password=b", headers={"Content-Type": content_type}
    )
    await problem(response, 415)


async def test_an_invalid_body_answers_422_listing_each_bad_field(auth):
    body = await problem(await auth.post("/v1/token", json={"username": ""}), 422)
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"username", "password"}
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])


async def test_broken_json_sent_as_json_answers_422(auth):
    response = await auth.post(
        "/v1/token", data=b'{"username": ', headers={"Content-Type": "application/json"}
    )
    body = await problem(response, 422)
    assert body["errors"]


async def test_a_nul_character_in_a_string_answers_422_not_500(auth):
    body = await problem(
        await auth.post("/v1/token", json={"username": "ad\x00min", "password": "whatever"}),
        422,
    )
    assert [e["field"] for e in body["errors"]] == ["username"]


async def test_a_validation_error_does_not_echo_the_input(auth):
    secret = "hunter2-very-secret"
    response = await auth.post("/v1/token", json={"username": "", "password": secret})
    assert secret not in await response.text()


async def test_x_request_id_is_echoed(auth):
    response = await auth.get("/healthz", headers={"X-Request-ID": "abc-123.x:y_z"})
    assert response.headers["X-Request-ID"] == "abc-123.x:y_z"


async def test_x_request_id_is_echoed_on_errors_too(auth):
    response = await auth.get("/nowhere", headers={"X-Request-ID": "err-1"})
    assert response.status == 404
    assert response.headers["X-Request-ID"] == "err-1"


@pytest.mark.parametrize("incoming", [None, "has spaces", "x" * 129, "é", "<script>"])
async def test_a_new_request_id_is_made_when_none_or_a_malformed_one_is_sent(auth, incoming):
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    response = await auth.get("/healthz", headers=headers)
    made = response.headers["X-Request-ID"]
    assert made != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", made)


async def test_healthz_answers_200(auth):
    response = await auth.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_answers_200_when_database_and_broker_are_up(auth):
    await wait_for(lambda: auth.server.app[BROKER].is_ready, message="broker connected")
    response = await auth.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body == {"status": "ready", "database": "up", "broker": "up"}


async def test_readyz_stays_200_while_the_broker_is_away_and_reports_it(
    make_proxied_auth, broker_proxy
):
    """The outbox keeps accepting work while RabbitMQ is away: an outage must not take every
    instance out of the load balancer (nobody could log in). It shows in the body and metrics."""
    auth = await make_proxied_auth()
    broker = auth.server.app[BROKER]
    await wait_for(lambda: broker.is_ready, message="broker connected")

    broker_proxy.cut()
    await wait_for(lambda: not broker.is_ready, message="broker lost")
    response = await auth.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready", "database": "up", "broker": "down"}
    assert "broker_connected 0.0" in await (await auth.get("/metrics")).text()

    broker_proxy.restore()
    await wait_for(lambda: broker.is_ready, timeout=5, message="broker back")
    assert (await (await auth.get("/readyz")).json())["broker"] == "up"
    assert "broker_connected 1.0" in await (await auth.get("/metrics")).text()


async def test_metrics_count_requests_by_route_method_and_status(auth):
    await auth.get("/healthz")
    await auth.get("/no/such/thing")
    response = await auth.get("/metrics")
    assert response.status == 200
    text = await response.text()
    assert 'http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    # An unknown address must not create one series per path someone tried.
    assert 'route="unmatched",status="404"' in text
    assert "/no/such/thing" not in text
    assert "http_request_duration_seconds_bucket" in text
