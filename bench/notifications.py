"""Part 3: notification latency, an operator's reply request -> its email accepted by the SMTP
sink, at fixed arrival rates (open loop: bench/load.py), through one tickets instance with its
default pool and the notifier, as `make run` has them.

    .venv/bin/python -m bench.notifications [--rates 50 200] [--reply-seconds 15]

Beside each p99, its ratio to the p99 of the reply request alone (answered by tickets once the
reply and its event are committed): what the relay, RabbitMQ, the notifier and SMTP add.
"""

import argparse
import asyncio
from collections import Counter

from bench.generators import replies
from bench.machine import load_average
from bench.suite import CLIENT_PASSWORD, Suite, running_suite
from bench.support import TARGETS, log, met, summary


async def tickets_to_reply_to(suite: Suite, count: int = 100) -> list[int]:
    client = suite.clients[-1]  # the client no load generator acts as
    headers = {
        "Authorization": f"Bearer {await suite.token(client['client_number'], CLIENT_PASSWORD)}"
    }
    numbers = []
    for i in range(count):
        body = {
            "service_id": client["services"][0]["id"],
            "category_id": suite.category_id,
            "body": f"Bench ticket {i} to reply to.",
            "allow_duplicate": True,
        }
        made = await suite.call("POST", f"{suite.tickets[0].url}/v1/tickets", headers, json=body)
        numbers.append(made["number"])
    await suite.drained()
    return numbers


def figures(load: dict, accepted: dict[str, float]) -> dict:
    rows = load["rows"]
    ok = [r for r in rows if r["status"] == 201]
    matched = [r for r in ok if r["token"] in accepted]
    e2e = [(accepted[r["token"]] - r["due"]) * 1000 for r in matched]
    # Emails per second from the first reply due to the last email accepted.
    span = (
        max(accepted[r["token"]] for r in matched) - min(r["due"] for r in matched)
        if matched
        else float("nan")
    )
    return {
        "rate": load["rate"],
        "requests": len(rows),
        "accepted_201": len(ok),
        "errors": dict(Counter(str(r["status"]) for r in rows if r["status"] != 201)),
        "emails_matched": len(e2e),
        "lost": len(ok) - len(e2e),
        "emails_per_second": len(matched) / span if matched else float("nan"),
        "e2e": summary(e2e),
        "request": summary([r["latency_ms"] for r in ok]),
        "e2e_ms": sorted(e2e),
    }


async def run(suite: Suite, args: argparse.Namespace) -> dict:
    numbers = await tickets_to_reply_to(suite)
    loads, result = [], {}
    for rate in args.rates:
        log(f"replies at {rate}/s for {args.reply_seconds} s (open loop)")
        job = {
            "url": suite.tickets[0].url,
            "token": suite.operator_token,
            "tickets": numbers,
            "rate": rate,
            "duration": args.reply_seconds,
        }
        before = suite.meter.snapshot()
        loads.append(await replies(job, args.reply_seconds + 60))
        waited = await suite.drained()
        log(f"  suite drained {waited:.0f} s after the last request")
        cpu = suite.meter.delta(before, suite.meter.snapshot())
        result[str(rate)] = {"cpu": cpu, "load_average": load_average()}
        await asyncio.sleep(1)
    accepted = await suite.accepted_emails()
    for load in loads:
        result[str(int(load["rate"]))] |= figures(load, accepted)
    return result


def lines(notification: dict) -> list[str]:
    out = [
        "3. Notification, operator reply request -> email accepted by the SMTP sink; /reply: the"
        " p99's ratio to the reply request's own p99",
        f"   {'rate':>8}{'replies':>9}{'emails':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'reply p99':>11}{'/reply':>8}{'emails/s':>10}{'load':>6}  target p99 < 100 ms at 200/s",
    ]
    for n in notification.values():
        e = n["e2e"]
        target = met(e["p99_ms"] < TARGETS["notify_p99_ms"]) if n["rate"] == 200 else ""
        line = (
            f"   {n['rate']:>6.0f}/s{n['accepted_201']:>9}{n['emails_matched']:>8}"
            f"{e['p50_ms']:>9.1f}{e['p99_ms']:>9.1f}{e['max_ms']:>9.1f}{n['request']['p99_ms']:>11.1f}"
            f"{e['p99_ms'] / n['request']['p99_ms']:>8.1f}{n['emails_per_second']:>10.0f}"
            f"{n['load_average']:>6.1f}  {target}"
            + (f"  errors {n['errors']}" if n["errors"] else "")
        )
        out.append(line.rstrip())
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reply-seconds", type=int, default=15)
    parser.add_argument("--rates", type=int, nargs="+", default=[50, 200])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    async with running_suite(connections=1) as suite:
        result = await run(suite, args)
    print("\n".join(lines(result)))


if __name__ == "__main__":
    asyncio.run(main())
