"""The notifier killed with SIGKILL in the middle of a burst, then restarted: no email lost;
duplicates (the same Message-ID twice) counted and reported."""

import signal
from collections import Counter

from tests.faults.load import publish_burst
from tests.faults.report import report
from tests.faults.stack import Stack
from tests.support.waiting import wait_for

BURST = 300
KILLS = 2


async def test_notifier_sigkilled_mid_burst_loses_no_email(stack: Stack) -> None:
    since = len(stack.relay.received)
    # The burst queued while the notifier is stopped, so that it is a backlog in full flow when
    # the kills come (published live, most of it would be sent before the first kill).
    await stack.notifier.stop()
    wanted = await publish_burst(stack, BURST, "kill")
    await stack.notifier.start()

    def delivered() -> int:
        return sum(1 for r in stack.relay.received[since:] if r.message_id in wanted)

    killed_after = []
    for kill in range(1, KILLS + 1):
        # Some progress since the last restart, so that each kill hits a process at work.
        goal = max(BURST * kill // (KILLS + 2), (killed_after or [0])[-1] + BURST // 10)
        await wait_for(
            lambda goal=goal: delivered() >= goal,
            timeout=60,
            message="progress before the kill",
        )
        await stack.notifier.stop(signal.SIGKILL)
        killed_after.append(delivered())
        await stack.notifier.start()
        await stack.notifier.wait_ready(30)
    await wait_for(
        lambda: wanted <= {r.message_id for r in stack.relay.received[since:]},
        timeout=90,
        interval=0.2,
        message="every email of the burst",
    )
    counts = Counter(r.message_id for r in stack.relay.received[since:] if r.message_id in wanted)
    duplicates = sum(n - 1 for n in counts.values())
    report(
        f"[3] notifier SIGKILLed {KILLS}x mid-burst of {BURST} events (after {killed_after} "
        f"emails), restarted each time: {len(counts)}/{BURST} distinct emails delivered, "
        f"{duplicates} duplicate(s) (same Message-ID twice), "
        f"{duplicates / BURST:.1%} of the burst"
    )
    assert set(counts) == wanted
