"""Schemathesis against the running notifier's own OpenAPI document, as an admin: no 5xx, and
every answer (status, content type, body) is one the document allows."""

import pytest
from aiohttp.test_utils import TestClient

from tests.notifier.conftest import Notifier, Publisher
from tests.notifier.test_delivery import known_client, reply
from tests.support import stack
from tests.support.schemathesis import assert_conforms
from tests.support.smtp import SmtpSink


@pytest.mark.slow
async def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    admin_notifier: Notifier, auth: TestClient, publisher: Publisher, smtp: SmtpSink, tmp_path
) -> None:
    # One email to list, and one dead letter, so the answers have items to check.
    await known_client(admin_notifier, publisher, "5001", "juana@example.com")
    smtp.answer = "550 5.1.1 Mailbox unavailable"
    await publisher.event(reply(1, "5001"))
    admin = await stack.bearer(auth, *stack.ADMIN)
    token = admin["Authorization"].removeprefix("Bearer ")
    base_url = str(admin_notifier.client.make_url("")).rstrip("/")
    await assert_conforms(base_url, {"admin": token}, tmp_path, max_examples=30, timeout=90)
