"""What the SMTP relay received, checked against what the suite accepted: every due email
arrived, and none twice."""

import re
from collections import Counter

from tests.faults.load import Load
from tests.faults.stack import Stack
from tests.support.smtp import Received
from tests.support.waiting import wait_for

RECEIPT = re.compile(r"\[#(\d+)\] Recibimos su consulta")


def receipts(received: list[Received]) -> Counter:
    """Ticket number -> receipts received."""
    found = (RECEIPT.search(str(r.message["Subject"])) for r in received)
    return Counter(int(m.group(1)) for m in found if m)


def answers(received: list[Received], label: str) -> Counter:
    """Reply text of this load -> answer emails received that quote it."""
    pattern = re.compile(rf"{re.escape(label)} reply \d+-\d+")
    return Counter(m.group(0) for r in received for m in pattern.finditer(r.text()))


def duplicate_ids(received: list[Received]) -> int:
    counts = Counter(r.message_id for r in received)
    return sum(n - 1 for n in counts.values())


def missing_emails(stack: Stack, load: Load, since: int) -> tuple[set[int], set[str]]:
    """Accepted tickets without a receipt, accepted replies without an answer."""
    got = stack.relay.received[since:]
    return (
        set(load.tickets) - set(receipts(got)),
        {text for _, text in load.replies} - set(answers(got, load.label)),
    )


async def all_delivered(stack: Stack, load: Load, since: int, timeout: float) -> None:
    """Wait until every accepted ticket has its receipt and every accepted reply its answer."""
    try:
        await wait_for(
            lambda: missing_emails(stack, load, since) == (set(), set()),
            timeout=timeout,
            interval=0.5,
            message="every due email",
        )
    except AssertionError as exc:
        tickets, replies = missing_emails(stack, load, since)
        raise AssertionError(
            f"{exc}: no receipt for tickets {sorted(tickets)}, no answer to {sorted(replies)}"
        ) from None


def exactly_once(stack: Stack, load: Load, since: int) -> tuple[int, int]:
    """Assert each due email arrived once; (receipts, answers) counted."""
    got = stack.relay.received[since:]
    got_receipts = {n: c for n, c in receipts(got).items() if n in set(load.tickets)}
    got_answers = answers(got, load.label)
    twice = {n: c for n, c in got_receipts.items() if c > 1}
    twice_answers = {t: c for t, c in got_answers.items() if c > 1}
    assert not twice and not twice_answers, (twice, twice_answers)
    assert duplicate_ids(got) == 0
    return len(got_receipts), sum(got_answers.values())
