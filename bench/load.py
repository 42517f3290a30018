"""The benchmark's load generator, a process of its own (it must not share the services' event
loop): reads a JSON job on stdin, writes a JSON result on stdout.

    python -m bench.load replies  < job.json   # open loop: a fixed arrival rate of operator replies

(Ticket creation, a closed loop, is driven by wrk: bench/create_tickets.lua.)

replies job: {"url": "http://host:port", "token": ..., "tickets": [...], "rate": r, "duration": s}
    Request i is due at start + i / rate whatever happened to the others (no coordinated
    omission: latency counts from the due time); each body carries a unique `bench-<hex>` token.
    Result: one row per request: {"token", "due" (epoch s), "status", "latency_ms"}.
"""

import asyncio
import json
import os
import sys
import time

import uvloop


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: a request written whole, its answer's status read
    back once its body (Content-Length) is in. About a seventh of aiohttp's client CPU per
    request, which the services under test then have for themselves."""

    def __init__(self) -> None:
        self.buffer = b""
        self.answer: asyncio.Future[int] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.answer is None:
            return
        head = self.buffer[:end].split(b"\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        self.answer.set_result(int(head[0].split()[1]))

    async def request(self, data: bytes) -> int:
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(data)  # type: ignore[attr-defined]
        try:
            return await self.answer
        finally:
            self.answer = None


async def replies(job: dict) -> dict:
    url, tickets, rate = job["url"], job["tickets"], float(job["rate"])
    count = int(rate * float(job["duration"]))
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    idle: list[_Connection] = []
    rows: list[dict] = []
    start = time.time() + 0.5

    async def one(i: int, due: float) -> None:
        token = f"bench-{os.urandom(8).hex()}"
        number = tickets[i % len(tickets)]
        body = json.dumps({"body": f"Hola, ya lo revisamos ({token}). Un saludo."}).encode()
        data = (
            f"POST /v1/tickets/{number}/messages HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {job['token']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        connection = None
        try:
            while idle and connection is None:
                candidate = idle.pop()
                connection = None if candidate.lost else candidate
            if connection is None:
                _, connection = await loop.create_connection(_Connection, host, int(port))
            status: int | str = await asyncio.wait_for(connection.request(data), 10)
            idle.append(connection)
        except (OSError, TimeoutError, ValueError, IndexError) as exc:
            status = type(exc).__name__
            if connection is not None:
                connection.transport.close()  # type: ignore[attr-defined]
        rows.append(
            {"token": token, "due": due, "status": status, "latency_ms": (time.time() - due) * 1000}
        )

    tasks = []
    for i in range(count):
        due = start + i / rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.transport.close()  # type: ignore[attr-defined]
    return {"rate": rate, "requests": count, "rows": rows}


def main() -> None:
    kind = sys.argv[1]
    job = json.load(sys.stdin)
    result = uvloop.run({"replies": replies}[kind](job))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
