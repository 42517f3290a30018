"""Fixtures that build real things: databases, a RabbitMQ vhost, running services."""

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator

import pytest

from deploy.rabbitmq import create_vhost, delete_vhost
from shared.logging import configure_logging
from tests.support.events import EventTap
from tests.support.infra import AMQP_HOST, Cleanups, DatabaseFactory, Vhosts, drop_stale_databases
from tests.support.postgres import PrivatePostgres

configure_logging("tests", "console")

_CLUSTER = pytest.StashKey[PrivatePostgres]()

# The fault suite stops and kills infrastructure: only `make faults` (HELPDESK_FAULTS=1) runs it.
collect_ignore = [] if os.environ.get("HELPDESK_FAULTS") == "1" else ["faults"]


def pytest_configure(config: pytest.Config) -> None:
    """The run's own PostgreSQL cluster (tests/support/postgres.py), unless TEST_PG_HOST or
    TEST_PG_PORT names a server to use: started once, by the process that starts the xdist
    workers (which inherit TEST_PG_PORT), and removed with everything in it at the end. Each
    test's databases cost a forced checkpoint when dropped; with fsync off, the run no longer
    waits on the disk for them, and no other run's long transaction holds back its vacuums."""
    if hasattr(config, "workerinput") or {"TEST_PG_HOST", "TEST_PG_PORT"} & os.environ.keys():
        return
    cluster = PrivatePostgres()
    try:
        asyncio.run(cluster.start())
    except BaseException:
        asyncio.run(cluster.destroy())
        raise
    config.stash[_CLUSTER] = cluster
    os.environ["TEST_PG_HOST"], os.environ["TEST_PG_PORT"] = "127.0.0.1", str(cluster.port)
    os.environ["TEST_PG_THROWAWAY"] = "1"


def pytest_unconfigure(config: pytest.Config) -> None:
    cluster = config.stash.get(_CLUSTER, None)
    if cluster is not None:
        for name in ("TEST_PG_HOST", "TEST_PG_PORT", "TEST_PG_THROWAWAY"):
            del os.environ[name]
        asyncio.run(cluster.destroy())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files holding a test marked slow first: under xdist, which hands out a file at a time
    in this order, their long tests then start early instead of finishing last."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: each file keeps its order


def _dump_tasks(*_: object) -> None:
    """`kill -USR1 <pytest pid>` prints every asyncio task's stack: what a hung test waits on."""
    try:
        tasks = asyncio.all_tasks(asyncio.get_event_loop_policy().get_event_loop())
    except RuntimeError:
        return
    for task in tasks:
        print(f"--- {task!r}", file=sys.stderr)
        task.print_stack(file=sys.stderr)


signal.signal(signal.SIGUSR1, _dump_tasks)


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def amqp_url(run_id: str) -> AsyncIterator[str]:
    """A RabbitMQ vhost of this test run, deleted afterwards."""
    name = f"test-{run_id}"
    url = create_vhost(name, host=AMQP_HOST)
    yield url
    delete_vhost(name)


@pytest.fixture(scope="session")
async def cleanups() -> AsyncIterator[Cleanups]:
    """What tests leave to clean up in the background, waited for at the end of the run."""
    later = Cleanups()
    yield later
    await later.wait()


@pytest.fixture(scope="session")
async def vhosts(run_id: str, cleanups: Cleanups) -> AsyncIterator[Vhosts]:
    """Vhosts of their own for tests, made in batches (tests/support/infra.py)."""
    made = Vhosts(run_id, cleanups)
    yield made
    made.close()


@pytest.fixture(scope="session")
async def session_databases(run_id: str) -> AsyncIterator[DatabaseFactory]:
    """The run's databases: the migrated templates and those of session-long stacks, dropped at
    the end with every test's (tests/support/infra.py)."""
    # One process clears what killed runs left behind: under xdist, the first worker.
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0":
        await drop_stale_databases()
    factory = DatabaseFactory(run_id)
    yield factory
    await factory.drop_all()


@pytest.fixture
async def databases(session_databases: DatabaseFactory) -> AsyncIterator[DatabaseFactory]:
    """The test's databases, dropped in the background once it ends."""
    factory = session_databases.for_test()
    yield factory
    factory.drop_later()


@pytest.fixture
async def event_tap(amqp_url: str) -> AsyncIterator[EventTap]:
    tap = await EventTap(amqp_url).start()
    yield tap
    await tap.close()
