"""The benchmark's load generator, a process of its own (it must not share the services' event
loop): reads a JSON job on stdin, writes a JSON result on stdout.

    python -m bench.load replies  < job.json   # open loop: a fixed arrival rate of operator replies

(Ticket creation, a closed loop, is driven by wrk: bench/create_tickets.lua.)

replies job: {"url": ..., "token": ..., "tickets": [...], "rate": r, "duration": s}
    Request i is due at start + i / rate whatever happened to the others (no coordinated
    omission: latency counts from the due time); each body carries a unique `bench-<hex>` token.
    Result: one row per request: {"token", "due" (epoch s), "status", "latency_ms"}.
"""

import asyncio
import json
import os
import sys
import time

import aiohttp
import uvloop


async def replies(job: dict) -> dict:
    url, tickets, rate = job["url"], job["tickets"], float(job["rate"])
    count = int(rate * float(job["duration"]))
    headers = {"Authorization": f"Bearer {job['token']}"}
    connector = aiohttp.TCPConnector(limit=512, limit_per_host=512)
    rows: list[dict] = []
    start = time.time() + 0.5

    async def one(i: int, due: float) -> None:
        token = f"bench-{os.urandom(8).hex()}"
        number = tickets[i % len(tickets)]
        body = {"body": f"Hola, ya lo revisamos ({token}). Un saludo."}
        try:
            async with session.post(
                f"{url}/v1/tickets/{number}/messages", json=body, headers=headers
            ) as response:
                await response.read()
                status: int | str = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = type(exc).__name__
        rows.append(
            {"token": token, "due": due, "status": status, "latency_ms": (time.time() - due) * 1000}
        )

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        for i in range(count):
            due = start + i / rate
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
    return {"rate": rate, "requests": count, "rows": rows}


def main() -> None:
    kind = sys.argv[1]
    job = json.load(sys.stdin)
    result = uvloop.run({"replies": replies}[kind](job))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
