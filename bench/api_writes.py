"""Part 1: ticket creation through the API, beside its ceilings measured in the same rounds.

    .venv/bin/python -m bench.api_writes [--duration 10] [--rounds 5] [--connections 16]

Each round runs three things one after the other, `--connections` connections each, with the
notifier stopped (each ticket asks for a receipt email; part 2, bench/whole_system.py, counts
those): pgbench with the statements of POST /v1/tickets (bench/create_ticket.sql), the database's
ceiling; the stack's floor, the same statements sent by a bare aiohttp + asyncpg handler
(bench/stack_floor.py), the target's ceiling; then the tickets API (client JWTs,
allow_duplicate), counting tickets whose events were published too. Rounds are run for one tickets
instance and then two; each round's ratio is of runs a few seconds apart (this host's speed drifts
by the minute), and the round with the median ratio to the floor is the one shown.
"""

import argparse
import asyncio
import math
import os

from bench.generators import WARMUP_SECONDS, pgbench, wrk
from bench.machine import load_average, per_ticket_ms, rss_mb
from bench.suite import Suite, running_suite
from bench.support import TARGETS, log, met
from deploy.processes import Service

# The database pool of each of the two tickets instances. PostgreSQL's rule of thumb gives a
# server (2 × cores + 1 disk) transactions at once; the instances share them, as a deployment
# sizes its pools to its database and not to its number of instances. One instance keeps the
# default: a single process seldom has its 10 all busy, and fewer made it wait for connections.
POOL_EACH = math.ceil((2 * (os.cpu_count() or 1) + 1) / 2)


async def ceiling(suite: Suite, connections: int, seconds: int) -> tuple[dict, dict]:
    """pgbench with the database to itself: every tickets instance is stopped meanwhile (no relay
    may publish its rows or take CPU from it), and its rows are marked sent after."""
    for instance in suite.tickets:
        await instance.stop()
    before = suite.meter.snapshot()
    run = pgbench(suite.urls["tickets"], connections, seconds, suite.pgbench_variables)
    spent = suite.meter.delta(before, suite.meter.snapshot())
    await suite.mark_outbox_sent()
    return run, spent


async def stack_floor(suite: Suite, seconds: int) -> tuple[dict, dict]:
    """The same statements through bare aiohttp + asyncpg, in one process, with the tickets
    instances stopped and its rows marked sent after, as pgbench's."""
    for instance in suite.tickets:
        await instance.stop()
    variables = suite.pgbench_variables
    env = suite.env | {
        "FLOOR_DATABASE_URL": suite.urls["tickets"],
        "FLOOR_CBASE": str(variables["cbase"]),
        "FLOOR_SBASE": str(variables["sbase"]),
    }
    floor = Service("floor", env, suite.logs, name="stack-floor", module="bench.stack_floor")
    await suite.start(floor)
    try:
        lines = suite.wrk_lines([floor])
        wrk(f"{floor.url}/v1/tickets", lines, WARMUP_SECONDS)
        before = suite.meter.snapshot()
        run = wrk(f"{floor.url}/v1/tickets", lines, seconds)
        spent = suite.meter.delta(before, suite.meter.snapshot())
        run["memory"] = rss_mb(floor.proc.pid)  # type: ignore[union-attr]
    finally:
        await floor.stop()
        del suite.meter.services[floor.name]
    await suite.mark_outbox_sent()
    run["rps"] = run["requests"] / run["seconds"]
    return run, spent


async def api(suite: Suite, instances: list[Service], seconds: int) -> tuple[dict, dict]:
    """A warm-up, then the measured run, each followed by the outbox draining: the figure is of
    tickets whose events were published too (requests / (run + the relay's lag after it)), since
    an API that answers faster than its relay publishes only grows its outbox."""
    for instance in instances:
        await suite.start(instance)
    lines = suite.wrk_lines(instances)
    url = f"{instances[0].url}/v1/tickets"
    wrk(url, lines, WARMUP_SECONDS)
    await suite.outbox_drained()
    before = suite.meter.snapshot()
    run = wrk(url, lines, seconds)
    run["outbox_lag_s"] = await suite.outbox_drained()
    spent = suite.meter.delta(before, suite.meter.snapshot())
    run["answered_rps"] = run["requests"] / run["seconds"]
    run["rps"] = run["requests"] / (run["seconds"] + run["outbox_lag_s"])
    return run, spent


async def rounds_of(suite: Suite, count: int, args: argparse.Namespace) -> dict:
    instances = suite.tickets[:count]
    for instance in suite.tickets:
        instance.env.pop("TICKETS_DB_POOL_MAX", None)
        if count == 2:  # the two share what suits the database (see POOL_EACH)
            instance.env["TICKETS_DB_POOL_MAX"] = str(POOL_EACH)
    rounds = []
    for n in range(1, args.rounds + 1):
        log(f"{count} instance(s), round {n}: pgbench, the floor, the API ({args.duration} s each)")
        pg, cpu_pg = await ceiling(suite, args.connections, args.duration)
        floor, cpu_floor = await stack_floor(suite, args.duration)
        # Each API run starts with the notifier's queue empty: the receipts of the runs before,
        # tens of thousands of them in a quorum queue, cost RabbitMQ more per publish as they grew.
        await suite.purge_queue()
        made, cpu_api = await api(suite, instances, args.duration)
        floor["ratio_pgbench"] = floor["rps"] / pg["tps"]
        made["ratio"] = made["rps"] / floor["rps"]
        made["ratio_pgbench"] = made["rps"] / pg["tps"]
        log(
            f"  pgbench {pg['tps']:.0f}/s, floor {floor['rps']:.0f}/s, API {made['rps']:.0f}/s"
            f" ({made['answered_rps']:.0f}/s answered, outbox lag {made['outbox_lag_s']:.1f} s)"
            f": API / floor {made['ratio']:.2f}; errors {made['errors'] or floor['errors'] or '-'}"
        )
        rounds.append(
            {
                "pgbench": pg,
                "floor": floor,
                "api": made,
                "cpu": {"pgbench": cpu_pg, "floor": cpu_floor, "api": cpu_api},
                "load_average": load_average(),
            }
        )
    memory = {i.name: rss_mb(i.proc.pid) for i in instances if i.proc}
    shown = sorted(rounds, key=lambda r: r["api"]["ratio"])[len(rounds) // 2]
    return {"rounds": rounds, "shown": rounds.index(shown), "memory_after_load": memory}


async def run(suite: Suite, args: argparse.Namespace) -> dict:
    """Both instance counts; the suite is left as it was found (tickets-1 with its default
    pool, the notifier running, its queue empty)."""
    await suite.notifier.stop()
    result = {
        "connections": args.connections,
        "seconds": args.duration,
        "rounds": args.rounds,
        "pool_each_of_two": POOL_EACH,
    }
    for count in (1, 2):
        result[str(count)] = await rounds_of(suite, count, args)
    for instance in suite.tickets:
        await instance.stop()
        instance.env.pop("TICKETS_DB_POOL_MAX", None)
    await suite.start(suite.tickets[0])
    await suite.purge_queue()
    await suite.start(suite.notifier)
    return result


def lines(c: dict) -> list[str]:
    width = max(25, 5 * c["rounds"] + 1)  # the column of the rounds' ratios
    out = [
        f"1. Ticket creation, {c['connections']} connections, {c['seconds']} s each, notifier"
        f" stopped; {c['rounds']} rounds of pgbench, the floor and the API, the median round shown",
        f"   {'':38}{'tickets/s':>10}{'answered/s':>11}{'lag s':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'/floor':>8}{'/pgbench':>9}  {'API / floor, each round':{width}}target ≥ 0.50",
    ]
    for count in ("1", "2"):
        r = c[count]["rounds"][c[count]["shown"]]
        pg, f, a = r["pgbench"], r["floor"], r["api"]
        ratios = " ".join(f"{x['api']['ratio']:.2f}" for x in c[count]["rounds"])
        label = f"tickets API, {count} instance{'s' if count == '2' else ''}"
        if count == "2":
            label += f" (pools of {c['pool_each_of_two']})"
        target = met(a["ratio"] >= TARGETS["creation_ratio"]) if count == "1" else "(reference)"
        errors = {k: v for k, v in (("api", a["errors"]), ("floor", f["errors"])) if v}
        out += [
            f"   {'pgbench, same SQL (database ceiling)':38}{pg['tps']:>10.0f}{'':>18}"
            f"{pg['p50_ms']:>8.1f}{pg['p99_ms']:>8.1f}{'':>8}{1:>9.2f}",
            f"   {'aiohttp + asyncpg alone (stack floor)':38}{f['rps']:>10.0f}{'':>18}"
            f"{f['p50_ms']:>8.1f}{f['p99_ms']:>8.1f}{1:>8.2f}{f['ratio_pgbench']:>9.2f}",
            f"   {label:38}{a['rps']:>10.0f}{a['answered_rps']:>11.0f}{a['outbox_lag_s']:>7.1f}"
            f"{a['p50_ms']:>8.1f}{a['p99_ms']:>8.1f}{a['ratio']:>8.2f}{a['ratio_pgbench']:>9.2f}"
            f"  {ratios:{width}}{target}" + (f"  errors {errors}" if errors else ""),
        ]
    out.append(
        "   (tickets/s: tickets whose events were published too, over the run and the outbox's"
        " lag after it; the floor: the same statements through the stack alone, no token,"
        " validation, log or event, bench/stack_floor.py)"
    )
    out.append("   CPU ms per created ticket, by process, in the median round (load average):")
    for count in ("1", "2"):
        r = c[count]["rounds"][c[count]["shown"]]
        made = {
            "pgbench": r["pgbench"]["transactions"],
            "floor": r["floor"]["requests"],
            "api": r["api"]["requests"],
        }
        for key, n in made.items():
            if count == "2" and key != "api":
                continue
            name = f"{key} ({count} instance{'s' if count == '2' else ''})" if key == "api" else key
            out.append(f"     {name}: {per_ticket_ms(r['cpu'][key], n)}")
        out.append(f"     load average after the {count}-instance rounds: {r['load_average']:.1f}")
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    async with running_suite(args.connections) as suite:
        result = await run(suite, args)
    print("\n".join(lines(result)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=int, default=10, help="seconds per creation run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of creation runs")


if __name__ == "__main__":
    asyncio.run(main())
