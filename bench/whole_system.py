"""Part 2: ticket creation with the whole system as users run it: auth, one tickets instance and
the notifier as processes, the notifier emailing each ticket's receipt to the SMTP sink.

    .venv/bin/python -m bench.whole_system [--duration 10] [--rounds 3] [--connections 16]

Each round runs the stack's floor (bench/stack_floor.py, the ceiling of part 1's target) and
then the whole system, `--connections` connections each. The figure counts tickets whose receipt
email was accepted by the sink: requests / (the run + the time until the outbox, the notifier's
queue and its emails are all done after it). The ratio to the floor is of the same round; the
round with the median ratio is the one shown.
"""

import argparse
import asyncio
import time

from bench.api_writes import add_arguments, stack_floor
from bench.generators import WARMUP_SECONDS, wrk
from bench.machine import load_average, per_ticket_ms
from bench.suite import Suite, running_suite
from bench.support import log


async def receipts_sent(suite: Suite, count: int, timeout: float = 240) -> float:
    """Seconds until the notifier has sent `count` emails in all (one receipt per ticket)."""
    started = time.monotonic()
    while await suite.emails_sent() < count:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{count} emails were not sent in {timeout:.0f} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def whole(suite: Suite, seconds: int) -> tuple[dict, dict]:
    await suite.start(suite.tickets[0])
    lines = suite.wrk_lines([suite.tickets[0]])
    url = f"{suite.tickets[0].url}/v1/tickets"
    sent = await suite.emails_sent()
    sent += wrk(url, lines, WARMUP_SECONDS)["requests"]
    await receipts_sent(suite, sent)
    before = suite.meter.snapshot()
    run = wrk(url, lines, seconds)
    run["lag_s"] = await receipts_sent(suite, sent + run["requests"])
    spent = suite.meter.delta(before, suite.meter.snapshot())
    run["emails"] = await suite.emails_sent() - sent
    window = run["seconds"] + run["lag_s"]
    run["answered_rps"] = run["requests"] / run["seconds"]
    run["rps"] = run["requests"] / window
    run["emails_per_second"] = run["emails"] / window
    return run, spent


async def run(suite: Suite, args: argparse.Namespace) -> dict:
    """Rounds of the floor then the whole system; tickets-1 is left running."""
    rounds = []
    for n in range(1, args.whole_rounds + 1):
        log(f"whole system, round {n}: the floor, then the API with receipts emailed")
        floor, cpu_floor = await stack_floor(suite, args.duration)
        made, cpu = await whole(suite, args.duration)
        made["ratio"] = made["rps"] / floor["rps"]
        log(
            f"  floor {floor['rps']:.0f}/s, whole system {made['rps']:.0f}/s"
            f" ({made['answered_rps']:.0f}/s answered, {made['emails']} receipts,"
            f" done {made['lag_s']:.1f} s after the run): ratio {made['ratio']:.2f}"
        )
        rounds.append(
            {
                "floor": floor,
                "whole": made,
                "cpu": {"floor": cpu_floor, "whole": cpu},
                "load_average": load_average(),
            }
        )
    shown = sorted(rounds, key=lambda r: r["whole"]["ratio"])[len(rounds) // 2]
    return {
        "connections": args.connections,
        "seconds": args.duration,
        "rounds": rounds,
        "shown": rounds.index(shown),
    }


def lines(w: dict) -> list[str]:
    r = w["rounds"][w["shown"]]
    f, a = r["floor"], r["whole"]
    ratios = " ".join(f"{x['whole']['ratio']:.2f}" for x in w["rounds"])
    errors = {k: v for k, v in (("api", a["errors"]), ("floor", f["errors"])) if v}
    return [
        f"2. The whole system: ticket creation with the notifier emailing receipts,"
        f" {w['connections']} connections, {w['seconds']} s; {len(w['rounds'])} rounds of the"
        " floor then the system, the median round shown",
        f"   {'':38}{'tickets/s':>10}{'answered/s':>11}{'lag s':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'emails/s':>9}{'/floor':>8}  API / floor, each round",
        f"   {'aiohttp + asyncpg alone (stack floor)':38}{f['rps']:>10.0f}{'':>18}"
        f"{f['p50_ms']:>8.1f}{f['p99_ms']:>8.1f}{'':>9}{1:>8.2f}",
        f"   {'auth + tickets + notifier + sink':38}{a['rps']:>10.0f}{a['answered_rps']:>11.0f}"
        f"{a['lag_s']:>7.1f}{a['p50_ms']:>8.1f}{a['p99_ms']:>8.1f}{a['emails_per_second']:>9.0f}"
        f"{a['ratio']:>8.2f}  {ratios}" + (f"  errors {errors}" if errors else ""),
        "   (tickets/s: tickets whose receipt the sink accepted, over the run and the time until"
        " everything was sent after it)",
        f"   CPU ms per ticket: {per_ticket_ms(r['cpu']['whole'], a['requests'])}"
        f" (load {r['load_average']:.1f})",
    ]


def add_rounds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--whole-rounds", type=int, default=3, help="rounds of the whole system")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    add_rounds(parser)
    args = parser.parse_args()
    async with running_suite(args.connections) as suite:
        result = await run(suite, args)
    print("\n".join(lines(result)))


if __name__ == "__main__":
    asyncio.run(main())
