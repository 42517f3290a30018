"""The fault suite: auth, tickets and the notifier as real processes (as tests/e2e runs them) on a
PostgreSQL cluster and a RabbitMQ node of their own (tests/support/postgres.py,
tests/faults/private.py), with the in-process SMTP relay of tests/support/smtp.py, which a
scenario can stop or make answer 4xx.

Collected only with HELPDESK_FAULTS=1 (`make faults`; see tests/conftest.py). Each scenario
records what it injected and what it checked with `report()` (tests/faults/report.py); the lines
are printed at the end of the run (pytest's terminal summary), so CI shows them without `-s`.
The helpers the scenarios share live beside it: stack.py, load.py, emails.py.
"""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from deploy.processes import CHEAP_ARGON2, Service, clean_env, run_module
from tests.faults.private import PrivateRabbit
from tests.faults.report import REPORT, report
from tests.faults.stack import ADMIN, Stack, populate
from tests.support.postgres import PrivatePostgres
from tests.support.sealing import SEALING_ENV
from tests.support.smtp import SmtpSink

# Retries that outlast the relay's 60 s outage (about 95 s in all) yet come back within 10 s.
RETRY_DELAYS = "[1, 2, 4, 8, 10, 10, 10, 10, 10, 10, 10, 10]"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.write_sep("=", "fault suite: what was injected and checked")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
async def pg() -> AsyncIterator[PrivatePostgres]:
    cluster = PrivatePostgres("helpdesk-faults-pg-")
    try:
        yield await cluster.start()
    finally:
        await cluster.destroy()


@pytest.fixture(scope="session")
async def rabbit() -> AsyncIterator[PrivateRabbit]:
    node = PrivateRabbit()
    try:
        yield await node.start()
    finally:
        await node.destroy()


@pytest.fixture(scope="session")
async def relay() -> AsyncIterator[SmtpSink]:
    sink = await SmtpSink().start()
    yield sink
    await sink.stop()


@pytest.fixture(scope="session")
async def stack(
    pg: PrivatePostgres,
    rabbit: PrivateRabbit,
    relay: SmtpSink,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    logs = tmp_path_factory.mktemp("faults-logs")
    env = clean_env(
        HELPDESK_AMQP_URL=rabbit.url,
        HELPDESK_PUBLIC_URL="http://panel.faults.example",
        AUTH_DATABASE_URL=await pg.create_database("auth"),
        TICKETS_DATABASE_URL=await pg.create_database("tickets"),
        NOTIFIER_DATABASE_URL=(notifier_db := await pg.create_database("notifier")),
        NOTIFIER_SMTP_HOST="127.0.0.1",
        NOTIFIER_SMTP_PORT=str(relay.port),
        NOTIFIER_RETRY_DELAYS=RETRY_DELAYS,
        **CHEAP_ARGON2,
        **SEALING_ENV,
    )
    code, _, err = await run_module(
        "services.auth", "create-operator", "--email", ADMIN[0], "--name", "Ada Admin",
        "--role", "admin", "--password-stdin", env=env, stdin=ADMIN[1] + "\n",
    )  # fmt: skip
    assert code == 0, err
    auth = Service("auth", env, logs)
    env |= {"TICKETS_AUTH_URL": auth.url, "NOTIFIER_AUTH_URL": auth.url}
    tickets = Service("tickets", env, logs)
    notifier = Service("notifier", env | {"NOTIFIER_INBOUND_PORT": "0"}, logs)
    stack = Stack(pg, rabbit, relay, auth, tickets, notifier, notifier_db)
    try:
        for service in stack.services:
            await service.start()
        await stack.all_ready()
        await populate(stack)
        report(
            f"set-up: private PostgreSQL 15 on :{pg.port}, private RabbitMQ node {rabbit.node} "
            f"on :{rabbit.port}, in-process SMTP relay on :{relay.port}; auth, tickets and "
            f"notifier as processes (logs in {logs})"
        )
        yield stack
    finally:
        for service in reversed(stack.services):
            await service.stop()
