"""The benchmark's load generator, a process of its own (it must not share the services' event
loop): reads a JSON job on stdin, writes a JSON result on stdout.

    python -m bench.load create   < job.json   # closed loop: N connections, each its own client
    python -m bench.load replies  < job.json   # open loop: a fixed arrival rate of operator replies

create job: {"urls": [...], "workers": [{"token": ..., "service_id": ...}, ...],
             "category_id": n, "duration": s, "warmup": s}
    Worker i posts to urls[i % len(urls)], one request at a time, for warmup + duration seconds;
    only requests started after the warm-up count. Result: requests, errors, rps, latencies (ms).
replies job: {"url": ..., "token": ..., "tickets": [...], "rate": r, "duration": s}
    Request i is due at start + i / rate whatever happened to the others (no coordinated
    omission: latency counts from the due time); each body carries a unique `bench-<hex>` token.
    Result: one row per request: {"token", "due" (epoch s), "status", "latency_ms"}.
"""

import asyncio
import itertools
import json
import os
import sys
import time

import aiohttp


async def create(job: dict) -> dict:
    urls, workers = job["urls"], job["workers"]
    warmup, duration = float(job.get("warmup", 2)), float(job["duration"])
    connector = aiohttp.TCPConnector(limit=len(workers) + 4, limit_per_host=len(workers) + 4)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    started = time.perf_counter()
    measure_from, stop_at = started + warmup, started + warmup + duration

    async def worker(i: int, spec: dict) -> None:
        url = urls[i % len(urls)] + "/v1/tickets"
        headers = {"Authorization": f"Bearer {spec['token']}"}
        body = {
            "service_id": spec["service_id"],
            "category_id": job["category_id"],
            "allow_duplicate": True,
        }
        for n in itertools.count():
            begin = time.perf_counter()
            if begin >= stop_at:
                return
            body["body"] = f"Bench ticket {i}-{n}: the site answers slowly since this morning."
            try:
                async with session.post(url, json=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            end = time.perf_counter()
            if begin >= measure_from:
                if status == 201:
                    latencies.append((end - begin) * 1000)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(i, spec) for i, spec in enumerate(workers)))
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": duration,
        "rps": len(latencies) / duration,
        "latencies_ms": latencies,
    }


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
    result = asyncio.run({"create": create, "replies": replies}[kind](job))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
