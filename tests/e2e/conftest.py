"""The whole suite as separate processes, exactly as `make run` starts it: auth, two tickets,
two notifiers, the panel and the SMTP sink, on databases and a RabbitMQ vhost of their own."""

import contextlib
import email
import email.policy
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest

from deploy.processes import CHEAP_ARGON2, Program, Service, clean_env, free_port, run_module
from deploy.rabbitmq import create_vhost, delete_vhost
from tests.support.infra import AMQP_HOST, DatabaseFactory

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@story.example", "the story admin passphrase"


class Mailbox:
    """The emails the SMTP sink kept as files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def all(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(self.directory.glob("*.eml"))
        ]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.all() if address.lower() in str(m["To"]).lower()]


@dataclass
class Suite:
    auth: Service
    tickets: list[Service]
    notifiers: list[Service]
    panel: Service
    sink: Program
    mailbox: Mailbox
    inbound_ports: list[int]
    notifier_database_url: str
    programs: list[Program] = field(default_factory=list)


@pytest.fixture(scope="module")
def suite_env() -> dict[str, str]:
    """Settings a test module adds to every process of its suite (override it there)."""
    return {}


@contextlib.asynccontextmanager
async def running_suite(
    databases: DatabaseFactory, directory: Path, extra_env: dict[str, str]
) -> AsyncIterator[Suite]:
    """The suite started on `databases`' new databases and a vhost of its own, with `extra_env`
    in every process's settings, its logs and emails in `directory`; stopped on the way out."""
    vhost = f"story-{uuid.uuid4().hex[:8]}"
    amqp_url = create_vhost(vhost, host=AMQP_HOST)
    mail_dir = directory / "mail"
    sink_port = free_port()
    env = clean_env(
        HELPDESK_AMQP_URL=amqp_url,
        HELPDESK_PUBLIC_URL="http://panel.story.example",
        # As `make run` sets it: the panel (and a test) in front of auth on this host.
        HELPDESK_TRUSTED_PROXIES="127.0.0.1/32",
        AUTH_DATABASE_URL=await databases.empty("auth"),
        TICKETS_DATABASE_URL=await databases.empty("tickets"),
        NOTIFIER_DATABASE_URL=(notifier_db := await databases.empty("notifier")),
        PANEL_DATABASE_URL=await databases.empty("panel"),
        NOTIFIER_SMTP_HOST="127.0.0.1",
        NOTIFIER_SMTP_PORT=str(sink_port),
        **CHEAP_ARGON2,
        **extra_env,
    )
    code, _, err = await run_module(
        "services.auth",
        "create-operator",
        "--email",
        ADMIN_EMAIL,
        "--name",
        "Ada Admin",
        "--role",
        "admin",
        "--password-stdin",
        env=env,
        stdin=ADMIN_PASSWORD + "\n",
    )
    assert code == 0, err
    sink = Program(
        "mailsink",
        "deploy.mailsink",
        env,
        directory,
        "--port",
        str(sink_port),
        "--directory",
        str(mail_dir),
    )
    auth = Service("auth", env, directory)
    env |= {"TICKETS_AUTH_URL": auth.url, "NOTIFIER_AUTH_URL": auth.url, "PANEL_AUTH_URL": auth.url}
    tickets = [Service("tickets", env, directory, name=f"tickets-{i}") for i in (1, 2)]
    inbound_ports = [free_port(), free_port()]
    notifiers = [
        Service("notifier", env | {"NOTIFIER_INBOUND_PORT": str(port)}, directory, f"notifier-{i}")
        for i, port in enumerate(inbound_ports, 1)
    ]
    # auth learns the sealing key from a notifier, which generated it (no key configured).
    auth.env["AUTH_NOTIFIER_URL"] = notifiers[0].url
    # The panel shows deliveries and dead letters from a notifier, as make run's does.
    panel_env = {"PANEL_TICKETS_URL": tickets[0].url, "PANEL_NOTIFIER_URL": notifiers[0].url}
    panel = Service("panel", env | panel_env, directory)
    programs: list[Program] = [sink, auth, *tickets, *notifiers, panel]
    try:
        for program in programs:
            await program.start()
        for service in (auth, *tickets, *notifiers, panel):
            await service.wait_ready()
        yield Suite(
            auth,
            tickets,
            notifiers,
            panel,
            sink,
            Mailbox(mail_dir),
            inbound_ports,
            notifier_db,
            programs,
        )
    finally:
        for program in reversed(programs):
            await program.stop()
        delete_vhost(vhost)


@pytest.fixture(scope="module")
async def suite(
    session_databases: DatabaseFactory,
    tmp_path_factory: pytest.TempPathFactory,
    suite_env: dict[str, str],
) -> AsyncIterator[Suite]:
    """One running suite per module: starting seven processes is the costly part, and the
    stories of a module each make accounts of their own."""
    databases = session_databases.for_test()
    try:
        async with running_suite(databases, tmp_path_factory.mktemp("suite"), suite_env) as suite:
            yield suite
    finally:
        databases.drop_later()
