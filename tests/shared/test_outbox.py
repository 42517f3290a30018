"""shared.outbox: events stored in the caller's transaction and published by OutboxRelay with
publisher confirms; nothing lost and nothing doubled while RabbitMQ is away."""

import asyncio
import contextlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared import db
from shared.broker import Broker
from shared.events import TicketClosed
from shared.logging import bind_correlation_id
from shared.outbox import NEXT_BATCH, RELAY_LOCK, RELAY_SESSION, OutboxRelay, backlog
from shared.resources import BROKER, POOL
from shared.unit_of_work import unit_of_work, wake_after_commit
from tests.support.events import EventTap
from tests.support.waiting import wait_for


def closed_event(number: int, client: str = "1000") -> TicketClosed:
    return TicketClosed(number=number, client_number=client, closed_by="operator:1")


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[Broker]:
    instance = Broker(amqp_url, service="outbox-test", reconnect_interval=0.5)
    await instance.start()
    await instance.wait_ready(10)
    yield instance
    await instance.stop()


@pytest.fixture
async def start_relay(shared_db: str) -> AsyncIterator[Callable[..., Awaitable[OutboxRelay]]]:
    relays: list[OutboxRelay] = []

    async def start(publish, **options) -> OutboxRelay:
        relay = OutboxRelay(shared_db, publish, **options)
        await relay.start()
        relays.append(relay)
        return relay

    yield start
    for relay in relays:
        await relay.stop()


def arrived(tap: EventTap, ids: set[str]) -> list[aio_pika.abc.AbstractIncomingMessage]:
    return [m for m in tap.messages if m.message_id in ids]


async def test_an_event_added_in_a_rolled_back_transaction_is_not_stored(pool):
    with pytest.raises(RuntimeError):
        async with unit_of_work(pool) as work:
            work.add_event(closed_event(1), aggregate="ticket:1")
            raise RuntimeError("the handler failed after adding its event")

    async with db.acquire(pool) as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_committed_event_is_published_with_its_id_type_and_correlation_id(
    pool, broker, start_relay, event_tap
):
    bind_correlation_id("corr-outbox-1")
    async with unit_of_work(pool) as work:
        envelope = work.add_event(closed_event(7), aggregate="ticket:7")
    await start_relay(broker.publish, poll_interval=0.2)

    await wait_for(lambda: arrived(event_tap, {str(envelope.id)}), message="the event")
    [message] = arrived(event_tap, {str(envelope.id)})
    assert message.message_id == str(envelope.id)
    assert message.type == "tickets.ticket.closed" == message.routing_key
    assert message.content_type == "application/json"
    assert message.correlation_id == "corr-outbox-1"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    body = message.body.decode()
    assert envelope.model_validate_json(body) == envelope
    async with db.acquire(pool) as conn:
        await wait_for(lambda: _no_backlog(conn), message="the row marked sent")


async def _no_backlog(conn: asyncpg.Connection) -> bool:
    return await backlog(conn) == 0


async def _terminate_lock_holder(conn: asyncpg.Connection) -> int:
    """Kill the backend holding the relay lock, as a crash or a network cut would end it."""
    return await conn.fetchval(
        """
        SELECT count(pg_terminate_backend(pid)) FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 1
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND ((classid::bigint << 32) | objid::bigint) = $1
        """,
        RELAY_LOCK,
    )


async def test_one_relay_per_database_publishes_and_another_takes_over_when_it_is_gone(
    pool, amqp_url, start_relay, event_tap
):
    brokers = [Broker(amqp_url, service=f"relay-{i}") for i in range(2)]
    for b in brokers:
        await b.start()
    try:
        for b in brokers:
            await b.wait_ready(10)
        relays = [await start_relay(b.publish, poll_interval=0.05, batch_size=5) for b in brokers]
        await wait_for(lambda: any(r.leading.is_set() for r in relays), message="a leader")
        [leader] = [r for r in relays if r.leading.is_set()]
        [standby] = [r for r in relays if r is not leader]
        aggregates = [f"ticket:{n}" for n in range(12)]
        ids: set[str] = set()

        async def write(seqs: range) -> None:
            async def writer(aggregate: str) -> None:
                for seq in seqs:
                    async with unit_of_work(pool) as work:
                        event = closed_event(seq, aggregate)
                        ids.add(str((work.add_event(event, aggregate=aggregate)).id))

            await asyncio.gather(*(writer(a) for a in aggregates))
            await wait_for(
                lambda: len({m.message_id for m in arrived(event_tap, ids)}) == len(ids),
                timeout=20,
                message=f"all {len(ids)} events",
            )

        await write(range(5))
        # A relay counts a batch once it is marked sent, which may be after the tap saw it.
        await wait_for(lambda: leader.published == 60, message="the leader's count of 60")
        assert standby.published == 0
        assert not standby.leading.is_set()

        async with db.acquire(pool) as conn:
            assert await _terminate_lock_holder(conn) == 1
        await wait_for(lambda: standby.leading.is_set(), timeout=5, message="the takeover")
        await write(range(5, 10))
        await wait_for(lambda: standby.published >= 60, message="the new leader's count")
        async with db.acquire(pool) as conn:
            await wait_for(lambda: _no_backlog(conn), message="every row marked sent")
    finally:
        for b in brokers:
            await b.stop()

    messages = arrived(event_tap, ids)
    assert len(messages) == len(ids) == 120
    assert all(n == 1 for n in Counter(m.message_id for m in messages).values())
    per_aggregate: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        data = TicketClosed.model_validate(json.loads(m.body)["data"])
        per_aggregate[data.client_number].append(data.number)
    assert per_aggregate == {a: list(range(10)) for a in aggregates}


async def test_the_leading_relay_told_of_a_commit_publishes_long_before_its_poll_interval(
    pool, broker, start_relay, event_tap
):
    """The unit of work tells the relay registered for its pool (as shared.resources does)."""
    relay = await start_relay(broker.publish, poll_interval=60)
    await wait_for(relay.leading.is_set, message="the relay leading")
    wake_after_commit(pool, relay.committed)
    try:
        for number in range(3):  # several rounds: each wake-up must be caught, not only one
            started = time.monotonic()
            async with unit_of_work(pool) as work:
                env = work.add_event(closed_event(number), aggregate="ticket:n")
            await wait_for(lambda e=env: arrived(event_tap, {str(e.id)}), timeout=3)
            assert time.monotonic() - started < 3
    finally:
        wake_after_commit(pool, None)


async def test_a_relay_that_is_not_leading_notifies_the_leader_of_its_commits(
    pool, broker, start_relay, event_tap
):
    """The commits of an instance whose relay waits for the lock reach the leader by NOTIFY, sent
    after the commit; so do those made once the leader has worked through a backlog (full
    batches, during which it does not listen) and listens again."""
    leader = await start_relay(broker.publish, poll_interval=60, batch_size=5)
    await wait_for(leader.leading.is_set, message="the relay leading")
    other = await start_relay(broker.publish, poll_interval=60, notify_pool=pool)
    backlog = set()
    async with unit_of_work(pool) as work:
        for number in range(23):
            backlog.add(str((work.add_event(closed_event(number), aggregate=f"t:{number}")).id))
    other.committed()
    await wait_for(lambda: len(arrived(event_tap, backlog)) == 23, message="the backlog")

    for number in range(3):
        started = time.monotonic()
        async with unit_of_work(pool) as work:
            env = work.add_event(closed_event(100 + number), aggregate="ticket:after")
        other.committed()
        await wait_for(lambda e=env: arrived(event_tap, {str(e.id)}), timeout=3)
        assert time.monotonic() - started < 3
    assert not other.leading.is_set()


async def test_no_commit_notifies_by_itself(pool, shared_db):
    """No trigger sends a NOTIFY inside the writing transaction: PostgreSQL would serialise the
    commits of such transactions through their flush."""
    listener = await asyncpg.connect(shared_db)
    try:
        heard: list[str] = []
        await listener.add_listener("helpdesk_outbox", lambda *args: heard.append(args[3]))
        async with unit_of_work(pool) as work:
            work.add_event(closed_event(1), aggregate="ticket:quiet")
        await listener.execute("SELECT 1")  # a round trip, in which a notice would arrive
        assert heard == []
    finally:
        await listener.close()


async def test_the_relay_polls_so_an_event_without_a_notification_is_still_published(
    pool, broker, start_relay, event_tap
):
    await start_relay(broker.publish, poll_interval=0.3)  # and no one calls committed()

    async with unit_of_work(pool) as work:
        env = work.add_event(closed_event(1), aggregate="ticket:p")

    await wait_for(lambda: arrived(event_tap, {str(env.id)}), timeout=5, message="polled event")


async def test_events_wait_in_the_outbox_while_the_relay_cannot_publish(
    pool, broker_proxy, amqp_url, start_relay, event_tap
):
    broker = Broker(broker_proxy.url_for(amqp_url), service="outbox-cut", reconnect_interval=0.3)
    await broker.start()
    try:
        await broker.wait_ready(10)
        await start_relay(broker.publish, poll_interval=0.1)
        broker_proxy.cut()
        await wait_for(lambda: not broker.is_ready, message="broker connection lost")

        ids = set()
        for number in range(5):
            async with unit_of_work(pool) as work:
                ids.add(str((work.add_event(closed_event(number), aggregate="t:c")).id))
        async with db.acquire(pool) as conn:
            assert await backlog(conn) == 5
        assert arrived(event_tap, ids) == []

        broker_proxy.restore()
        await wait_for(lambda: len(arrived(event_tap, ids)) == 5, timeout=15)
        async with db.acquire(pool) as conn:
            await wait_for(lambda: _no_backlog(conn), message="rows marked sent")
    finally:
        await broker.stop()
    assert sorted(m.message_id for m in arrived(event_tap, ids)) == sorted(ids)


# The requirement, end to end with the real auth service.


@pytest.fixture
async def auth(make_proxied_auth) -> TestClient:
    """auth whose only way to RabbitMQ goes through the cuttable proxy."""
    return await make_proxied_auth()


async def test_with_the_broker_unreachable_auth_still_answers_and_every_event_is_published_once(
    api, admin, broker_proxy, event_tap
):
    app = api.http.server.app
    auth_pool = app[POOL]
    await wait_for(lambda: app[BROKER].is_ready, message="auth connected to RabbitMQ")
    async with db.acquire(auth_pool) as conn:
        await wait_for(lambda: _no_backlog(conn), message="earlier events published")

    broker_proxy.cut()
    await wait_for(lambda: not app[BROKER].is_ready, message="auth lost RabbitMQ")

    numbers = []
    for i in range(5):
        started = time.monotonic()
        response = await api.http.post(
            "/v1/clients",
            json={"name": f"Cliente {i}", "email": f"c{i}@example.com", "services": []},
            headers=admin,
        )
        assert response.status == 201, await response.text()
        assert time.monotonic() - started < 2
        numbers.append((await response.json())["client_number"])

    async with db.acquire(auth_pool) as conn:
        rows = await conn.fetch(
            "SELECT event_id, payload->'data'->>'client_number' AS number FROM outbox"
            " WHERE routing_key = 'auth.client.created' AND sent_at IS NULL"
        )
    assert sorted(r["number"] for r in rows) == sorted(numbers)
    ids = {str(r["event_id"]) for r in rows}
    assert arrived(event_tap, ids) == []
    # Still reachable, still ready to answer, while the relay keeps failing.
    assert (await api.http.get("/healthz")).status == 200

    broker_proxy.restore()
    # Soon after the broker is back (reconnect interval 0.5 s), not after the relay's back-off.
    await wait_for(lambda: len(arrived(event_tap, ids)) >= 5, timeout=4, message="5 events")
    async with db.acquire(auth_pool) as conn:
        await wait_for(lambda: _no_backlog(conn), message="outbox drained")
    with contextlib.suppress(AssertionError):  # give a duplicate the chance to show up
        await wait_for(lambda: len(arrived(event_tap, ids)) > 5, timeout=0.5)
    assert Counter(m.message_id for m in arrived(event_tap, ids)) == dict.fromkeys(ids, 1)


async def test_rows_sent_more_than_a_day_ago_are_purged_by_the_leading_relay(
    pool, broker, start_relay, shared_db
):
    async with unit_of_work(pool) as work:
        old = work.add_event(closed_event(901), aggregate="ticket:901")
        recent = work.add_event(closed_event(902), aggregate="ticket:902")
    relay = await start_relay(broker.publish, poll_interval=0.2)
    await wait_for(
        lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL"),
        message="both events published",
    )
    await pool.execute(
        "UPDATE outbox SET sent_at = now() - interval '25 hours' WHERE event_id = $1", old.id
    )
    waiting = OutboxRelay(shared_db, broker.publish)  # never started: does not lead
    assert await waiting.purge_sent(pool) == 0
    assert relay.leading.is_set()
    assert await relay.purge_sent(pool) == 1
    assert [r["event_id"] for r in await pool.fetch("SELECT event_id FROM outbox")] == [recent.id]


async def test_the_relays_read_skips_the_rows_sent_since_the_last_vacuum(shared_db, pool):
    """Their entries stay in the index of unsent rows until a vacuum; the relay's read passes
    them and marks them dead, and skips them afterwards (a bitmap scan visited every such row on
    every read)."""
    await pool.execute(
        "INSERT INTO outbox (event_id, routing_key, aggregate, payload)"
        " SELECT gen_random_uuid(), 'tickets.ticket.closed', 'ticket:' || n, '{}'"
        " FROM generate_series(1, $1) AS n",
        20_000,
    )
    await pool.execute("UPDATE outbox SET sent_at = now()")
    async with unit_of_work(pool) as work:
        for number in (1, 2, 3):
            work.add_event(closed_event(number), aggregate=f"ticket:{number}")

    reads: list[dict] = []

    async def cheap_read() -> bool:
        plan = json.loads(
            await relay_conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {NEXT_BATCH}", 100)
        )[0]["Plan"]
        reads.append(plan)
        assert plan["Actual Rows"] == 3, plan
        # 20,000 entries fill about 60 index pages; the rows sit on about 250 heap pages.
        return plan["Shared Hit Blocks"] + plan.get("Shared Read Blocks", 0) < 100

    relay_conn = await asyncpg.connect(shared_db, server_settings=RELAY_SESSION)
    try:
        # A read marks the entries dead only once no transaction in the whole cluster began
        # before the update (PostgreSQL's cheap visibility test): another test run's or a
        # benchmark's long transaction delays that past the first read. A bitmap scan never gets
        # cheap.
        await wait_for(cheap_read, timeout=120, interval=0.2, message="a read skipping sent rows")
    except AssertionError as exc:
        oldest = await pool.fetchrow(
            "SELECT datname, xact_start, left(query, 200) AS query FROM pg_stat_activity"
            " WHERE backend_xid IS NOT NULL ORDER BY xact_start LIMIT 1"
        )
        raise AssertionError(
            f"{exc}: last read {reads[-1] if reads else None}; oldest transaction {oldest}"
        ) from None
    finally:
        await relay_conn.close()
