"""Calls to a tickets process (deploy.processes.Service) that tests of several suites share."""

from typing import Any

from deploy.processes import Service
from tests.support.waiting import wait_for


async def open_when_known(
    tickets: Service,
    headers: dict[str, str],
    ticket: dict[str, Any],
    *,
    timeout: float = 20,
    message: str = "tickets to know the client",
) -> dict[str, Any]:
    """POST /v1/tickets until it is 201, and the ticket: a new client's services reach tickets
    as an event after auth created them, and until then their service is unknown (422)."""

    async def opened() -> dict[str, Any] | None:
        status, body = await tickets.request("POST", "/v1/tickets", headers=headers, json=ticket)
        assert status in (201, 422), body
        return body if status == 201 else None

    return await wait_for(opened, timeout=timeout, interval=0.2, message=message)
