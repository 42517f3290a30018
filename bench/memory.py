"""Part 4: the resident memory of every service process, once started and after the load.

    .venv/bin/python -m bench.memory [--duration 10]   # alone: after one whole-system run

In `make bench` the readings after the load are taken at the end of the suite's parts; a tickets
instance restarted between parts counts with the larger of its readings.
"""

import argparse
import asyncio

from bench.api_writes import add_arguments
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
    out = ["4. Resident memory (VmRSS) after the load, MB (peak VmHWM)   target < 150 MB"]
    for name, m in memory["after_load"].items():
        idle = memory["idle"].get(name, {}).get("rss_mb")
        out.append(
            f"   {name:12}{m['rss_mb']:>8.1f}  (peak {m['peak_rss_mb']:.1f}"
            + (f", idle {idle:.1f})" if idle is not None else ")")
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
        await whole(suite, args.duration)
        memory = {"idle": idle, "after_load": after_load(suite, {})}
    print("\n".join(lines(memory)))


if __name__ == "__main__":
    asyncio.run(main())
