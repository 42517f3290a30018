"""The tickets instance leading the outbox relay killed with SIGKILL under load, while a second
instance takes the requests: the second takes the relay over, and every accepted ticket's receipt
and every accepted reply's answer is still delivered, exactly once (an event the dead leader had
published but not yet marked sent is published again; the notifier ignores the repeat)."""

import signal
import time

import asyncpg

from deploy.processes import Service
from shared.outbox import RELAY_LOCK
from tests.faults.emails import all_delivered, exactly_once
from tests.faults.load import Load
from tests.faults.report import report
from tests.faults.stack import Stack, log_dir
from tests.support.waiting import wait_for

# Who holds the relay's advisory lock (leads) in the tickets database and who waits for it (the
# other services' relays hold the same key in their own databases).
RELAYS = """
SELECT count(*) FILTER (WHERE granted) AS leading, count(*) FILTER (WHERE NOT granted) AS waiting
FROM pg_locks
WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = $1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


async def test_leading_relay_sigkilled_under_load_loses_no_event(stack: Stack) -> None:
    await stack.refresh_tokens()
    since = len(stack.relay.received)
    ignored_before = stack.notifier.log().count("email.duplicate_ignored")
    db = await asyncpg.connect(stack.tickets.env["TICKETS_DATABASE_URL"])
    second = Service("tickets", stack.tickets.env, log_dir(stack), name="tickets-2")

    async def relays(leading: int, waiting: int) -> bool:
        row = await db.fetchrow(RELAYS, RELAY_LOCK)
        return (row["leading"], row["waiting"]) == (leading, waiting)

    try:
        await second.start()
        await second.wait_ready(60)
        # The first instance leads (it was alone); the second queues behind it.
        await wait_for(lambda: relays(1, 1), timeout=30, message="the second relay queued")
        load = Load(stack, "s6", via=second, pause=0.05).start(await stack.operator())
        await wait_for(lambda: len(load.tickets) >= 30, timeout=30, message="load under way")
        accepted_before = len(load.tickets)
        killed = time.monotonic()
        await stack.tickets.stop(signal.SIGKILL)
        await wait_for(lambda: relays(1, 0), timeout=30, message="the second relay leading")
        takeover = time.monotonic() - killed
        await load.finish_after_recovery()
        await all_delivered(stack, load, since, timeout=60)
        n_receipts, n_answers = exactly_once(stack, load, since)
        repeats = stack.notifier.log().count("email.duplicate_ignored") - ignored_before
        assert "outbox.relay_leading" in second.log()
    finally:
        await db.close()
        if stack.tickets.proc is not None and stack.tickets.proc.returncode is not None:
            await stack.tickets.start()
            await stack.tickets.wait_ready(60)
        await second.stop()
    report(
        f"[6] the tickets instance leading the outbox relay SIGKILLed after {accepted_before} "
        f"tickets accepted through a second instance (load went on meanwhile): the second took "
        f"the relay over {takeover:.2f} s later; all {n_receipts} receipts + {n_answers} answers "
        f"of {len(load.tickets)} tickets and {len(load.replies)} replies delivered, each exactly "
        f"once; events published again and ignored by the notifier: {repeats}"
    )
