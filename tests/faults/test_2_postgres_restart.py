"""PostgreSQL crashed and restarted under load: requests during the outage answer 503
problem+json fast, none hangs, every 201 survives, and the services recover without a restart."""

import asyncio
import time

import aiohttp

from tests.faults.emails import all_delivered, exactly_once
from tests.faults.load import FAST_ANSWER, Load, Outcome, publish_burst
from tests.faults.report import report
from tests.faults.stack import ADMIN, Stack
from tests.support.waiting import wait_for

OUTAGE = 10.0
BURST = 200


async def probe(stack: Stack, admin: dict[str, str], stop: asyncio.Event) -> list[Outcome]:
    """Requests to auth (a login) and to the notifier (the dead letters) while PostgreSQL is
    away: both need the database."""
    outcomes = []
    calls = [
        ("auth login", stack.auth.url + "/v1/token", "POST",
         {"json": {"username": ADMIN[0], "password": ADMIN[1]}}),
        ("notifier dead letters", stack.notifier.url + "/v1/dead-letters", "GET",
         {"headers": admin}),
    ]  # fmt: skip
    timeout = aiohttp.ClientTimeout(total=3 * FAST_ANSWER)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            for what, url, method, kw in calls:
                began = time.monotonic()
                try:
                    async with session.request(method, url, **kw) as response:
                        await response.read()
                        outcome = Outcome(what, response.status, 0, response.content_type)
                except (aiohttp.ClientError, OSError, TimeoutError):
                    outcome = Outcome(what, 0, 0)
                outcome.seconds = time.monotonic() - began
                outcomes.append(outcome)
            await asyncio.sleep(0.5)  # pacing of the probe
    return outcomes


async def test_postgres_restarted_under_load_answers_503_fast_and_keeps_every_201(
    stack: Stack,
) -> None:
    await stack.refresh_tokens()
    operator = await stack.operator()
    admin = await stack.admin()  # tokens are verified without the database
    pids = {s.name: s.proc.pid for s in stack.services if s.proc}
    since = len(stack.relay.received)
    burst = await publish_burst(stack, BURST, "crash")

    def burst_delivered() -> list[str]:
        return [r.message_id for r in stack.relay.received[since:] if r.message_id in burst]

    load = Load(stack, "s2").start(operator)
    await wait_for(lambda: len(load.tickets) >= 3, timeout=30, message="load before the fault")
    # The notifier in the middle of sending the burst when the database goes.
    await wait_for(lambda: len(burst_delivered()) >= BURST // 4, timeout=30, message="burst")
    crashed_at = len(burst_delivered())
    began = time.monotonic()
    await stack.pg.stop("immediate")  # a crash: every backend goes at once
    cut = len(load.outcomes)
    stop_probe = asyncio.Event()
    prober = asyncio.create_task(probe(stack, admin, stop_probe))
    readiness = await stack.readiness()
    await asyncio.sleep(OUTAGE - (time.monotonic() - began))  # hold the outage
    stop_probe.set()
    probes = await prober
    during = load.outcomes[cut:]
    await stack.pg.start()
    outage = time.monotonic() - began
    await stack.all_ready(timeout=30)
    recovered = time.monotonic() - began - outage
    await load.finish_after_recovery()

    # Nothing restarted: the same processes answer.
    for service in stack.services:
        service.check_running()
        assert service.proc is not None and service.proc.pid == pids[service.name]

    # During the outage: 503 problem+json, fast.
    refused = [o for o in during if o.status == 503]
    wrong = [o for o in load.outcomes if o.status not in (200, 201, 409, 503)]
    not_problem = [o for o in refused if o.content_type != "application/problem+json"]
    slow = [o for o in load.outcomes + probes if o.seconds > FAST_ANSWER]
    probes_wrong = [
        o for o in probes if o.status != 503 or o.content_type != "application/problem+json"
    ]

    # Every 201 survives: the ticket and its accepted reply are there.
    accepted_replies = dict(load.replies)
    lost = []
    for number in load.tickets:
        status, ticket = await stack.tickets.request(
            "GET", f"/v1/tickets/{number}", headers=operator
        )
        bodies = [m["body"] for m in ticket["messages"]] if status == 200 else []
        if status != 200 or (number in accepted_replies and accepted_replies[number] not in bodies):
            lost.append((number, status))
    assert not lost, lost
    await all_delivered(stack, load, since, timeout=120)
    await wait_for(lambda: set(burst_delivered()) == burst, timeout=60, message="the burst")
    burst_twice = len(burst_delivered()) - len(burst)
    try:
        n_receipts, n_answers = exactly_once(stack, load, since)
        repeated = None
    except AssertionError as exc:
        n_receipts = n_answers = -1
        repeated = exc
    report(
        f"[2] PostgreSQL crashed (pg_ctl stop -m immediate), down {outage:.0f} s, under load: "
        f"{len(during)} tickets requests during the outage, {len(refused)} answered 503 "
        f"(problem+json: {len(refused) - len(not_problem)}), slowest request of the run "
        f"{load.slowest():.2f} s (limit {FAST_ANSWER} s), statuses {dict(load.statuses())}; "
        f"{len(probes)} auth logins and notifier admin requests during the outage: "
        f"{sum(o.status == 503 for o in probes)} answered 503 problem+json, slowest "
        f"{max((o.seconds for o in probes), default=0):.2f} s; "
        f"readyz during the outage {readiness}, ready again {recovered:.1f} s after restart, "
        f"same processes; {len(load.tickets)} "
        f"tickets and {len(load.replies)} replies accepted, {len(lost)} lost; emails "
        f"{n_receipts} receipts + {n_answers} answers, each exactly once; a burst of {BURST} "
        f"recovery emails, {crashed_at} sent at the crash: all delivered, {burst_twice} twice"
    )
    assert set(readiness.values()) == {503}, readiness
    assert burst_twice == 0, "the crash made the notifier send an email twice"
    if repeated is not None:
        raise repeated
    assert refused, "no request reached the services while PostgreSQL was down"
    assert not wrong, wrong[:10]
    assert not not_problem, not_problem[:10]
    assert not slow, slow[:10]
    assert probes and not probes_wrong, probes_wrong[:10]
    assert not lost, lost
