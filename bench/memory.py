"""Part 4: the resident memory of every service process, once started and after the load.

    .venv/bin/python -m bench.memory [--duration 10]   # alone: after one whole-system run

Beside each reading, the ratio of its peak to the stack floor's (bench/stack_floor.py: aiohttp,
asyncpg and uvloop alone, after its own load): what a service holds above the bare stack.

In `make bench` the readings after the load are taken at the end of the suite's parts; a tickets
instance restarted between parts counts with the larger of its readings.
"""

import argparse
import asyncio

from bench.api_writes import add_arguments, stack_floor
from bench.machine import rss_mb
from bench.suite import Suite, running_suite
from bench.support import TARGETS, met


def readings(suite: Suite) -> dict[str, dict]:
    running = (suite.auth, *suite.tickets, suite.notifier)
    return {s.name: rss_mb(s.proc.pid) for s in running if s.proc and s.proc.returncode is None}


def after_load(suite: Suite, earlier: dict[str, dict]) -> dict[str, dict]:
    now = readings(suite)
    for name, reading in earlier.items():
        if name not in now or reading["rss_mb"] > now[name]["rss_mb"]:
            now[name] = reading
    return now


def lines(memory: dict) -> list[str]:
    floor = memory["floor"]
    out = [
        "4. Resident memory after the load, MB: VmRSS (peak VmHWM), and the peak's ratio to the"
        " stack floor's peak (aiohttp + asyncpg alone, after its load)",
        f"   {'':12}{'RSS':>8}{'peak':>8}{'idle':>8}{'/floor':>8}  target peak < 150 MB",
        f"   {'stack floor':12}{floor['rss_mb']:>8.1f}{floor['peak_rss_mb']:>8.1f}{'':>8}{1:>8.2f}",
    ]
    for name, m in memory["after_load"].items():
        idle = memory["idle"].get(name, {}).get("rss_mb")
        out.append(
            f"   {name:12}{m['rss_mb']:>8.1f}{m['peak_rss_mb']:>8.1f}"
            + (f"{idle:>8.1f}" if idle is not None else f"{'':>8}")
            + f"{m['peak_rss_mb'] / floor['peak_rss_mb']:>8.2f}"
            + f"  {met(m['peak_rss_mb'] < TARGETS['rss_mb'])}"
        )
    return out


async def main() -> None:
    from bench.whole_system import whole

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    async with running_suite(args.connections) as suite:
        idle = readings(suite)
        floor, _ = await stack_floor(suite, args.duration)
        await whole(suite, args.duration)
        memory = {"idle": idle, "after_load": after_load(suite, {}), "floor": floor["memory"]}
    print("\n".join(lines(memory)))


if __name__ == "__main__":
    asyncio.run(main())
