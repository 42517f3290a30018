"""`make bench`: every part of the benchmark, then one table of the figures beside their ceilings.

    .venv/bin/python -m bench [--duration 10] [--rounds 5] [--whole-rounds 3] [--connections 16]
                              [--reply-seconds 15] [--rates 50 200] [--requests 300] [--skip-reads]
    .venv/bin/python -m bench --table   # the table of the last run again

Parts 1 - 4 run on one suite of processes (bench/suite.py: its own databases and RabbitMQ vhost,
removed at the end), part 5 on databases and a vhost of its own; each part also runs alone
(`python -m bench.<part>`):
1. bench/api_writes.py: ticket creation, 1 and 2 tickets instances, beside pgbench and the stack's
   floor (bench/stack_floor.py) measured in the same rounds;
2. bench/whole_system.py: ticket creation with the notifier emailing receipts, beside the floor;
3. bench/notifications.py: operator reply -> email accepted, at 50 and 200 replies/s;
4. bench/memory.py: each service's resident memory after the load;
5. bench/tickets_reads.py: reads with 1,000,000 tickets, beside the same SQL alone.
Results: bench/results/suite.json (+ tickets_reads.json) and bench/results/*.png.
"""

import argparse
import asyncio
import json
import subprocess
import time
from datetime import UTC, datetime

from bench import api_writes, memory, notifications, tickets_reads, whole_system
from bench.machine import describe
from bench.plots import draw
from bench.suite import running_suite
from bench.support import RESULTS, ROOT, log


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


async def suite_parts(args: argparse.Namespace) -> dict:
    async with running_suite(args.connections) as suite:
        idle = memory.readings(suite)
        creation = await api_writes.run(suite, args)
        whole = await whole_system.run(suite, args)
        notification = await notifications.run(suite, args)
        restarted = creation["1"]["memory_after_load"] | creation["2"]["memory_after_load"]
        after = memory.after_load(suite, restarted)
        floor = creation["1"]["rounds"][creation["1"]["shown"]]["floor"]["memory"]
        return {
            "run": suite.run,
            "creation": creation,
            "whole_system": whole,
            "notification": notification,
            "memory": {"idle": idle, "after_load": after, "floor": floor},
        }


def table(result: dict) -> str:
    out = [
        f"Helpdesk benchmarks, {result['measured_at'][:16]} UTC; {result['machine']}",
        f"uptime before: {result['uptime_before']}",
        f"uptime after:  {result['uptime_after']}",
        "",
    ]
    out += [*api_writes.lines(result["creation"]), ""]
    out += [*whole_system.lines(result["whole_system"]), ""]
    out += [*notifications.lines(result["notification"]), ""]
    out += memory.lines(result["memory"])
    if "reads" in result:
        out += ["", *tickets_reads.lines(result["reads"])]
    return "\n".join(out)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    api_writes.add_arguments(parser)
    whole_system.add_rounds(parser)
    notifications.add_arguments(parser)
    tickets_reads.add_arguments(parser)
    parser.add_argument("--skip-reads", action="store_true", help="keep the last reads result")
    parser.add_argument("--table", action="store_true", help="print results/suite.json's table")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads((RESULTS / "suite.json").read_text())))
        return
    started = time.monotonic()
    result = {
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": describe(),
        "uptime_before": uptime(),
    }
    result |= await suite_parts(args)
    if args.skip_reads:
        result["reads"] = json.loads((RESULTS / "tickets_reads.json").read_text())
    else:
        log(f"reads with {args.tickets:,} tickets")
        result["reads"] = await tickets_reads.run(args)
    result["uptime_after"] = uptime()
    result["seconds"] = time.monotonic() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "suite.json").write_text(json.dumps(result, indent=2))
    for path in draw(result, RESULTS):
        log(f"drew {path.relative_to(ROOT)}")
    print()
    print(table(result))
    print(f"\n({result['seconds']:.0f} s; results in bench/results/suite.json)")


if __name__ == "__main__":
    asyncio.run(main())
