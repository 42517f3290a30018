"""The SMTP relay away for 60 s (30 s answering 451, then 30 s refusing connections), then back:
every due email is delivered afterwards, none twice, none dead-lettered."""

import asyncio
import time

from tests.faults.emails import all_delivered, exactly_once
from tests.faults.load import Load
from tests.faults.report import report
from tests.faults.stack import Stack
from tests.support.waiting import wait_for

TEMPORARY, STOPPED = 30.0, 30.0


async def test_relay_down_60s_then_back_delivers_everything_once(stack: Stack) -> None:
    await stack.refresh_tokens()
    dead_before = {d["id"] for d in await stack.dead_letters()}
    since = len(stack.relay.received)
    began = time.monotonic()
    stack.relay.answer = "451 4.3.0 Try again later"
    # A bounded load (10 rounds per client) whose emails all fall into the outage.
    load = Load(stack, "s4", pause=1.0, max_rounds=10).start(await stack.operator())
    try:
        await wait_for(lambda: stack.relay.refused > 0, timeout=30, message="a refused email")
        await asyncio.sleep(TEMPORARY - (time.monotonic() - began))  # hold the outage
        await stack.relay.stop()
        await asyncio.sleep(STOPPED)  # hold the outage
    finally:
        stack.relay.answer = None
        await stack.relay.start()
    outage = time.monotonic() - began
    await load.finish()
    assert len(stack.relay.received) == since, "an email got through the outage"

    back = time.monotonic()
    await all_delivered(stack, load, since, timeout=60)
    caught_up = time.monotonic() - back
    n_receipts, n_answers = exactly_once(stack, load, since)
    new_dead = [d for d in await stack.dead_letters() if d["id"] not in dead_before]
    report(
        f"[4] SMTP relay away {outage:.0f} s ({TEMPORARY:.0f} s answering 451, then "
        f"{STOPPED:.0f} s refusing connections) while {len(load.tickets)} tickets and "
        f"{len(load.replies)} replies were accepted: {stack.relay.refused} attempts refused, "
        f"all {n_receipts} receipts + {n_answers} answers delivered {caught_up:.1f} s after "
        f"the relay came back, each exactly once; new dead letters: {len(new_dead)}"
    )
    assert not new_dead, new_dead
