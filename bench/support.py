"""Small helpers every part of the benchmark uses: paths, databases, percentiles, the log."""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
VAR = ROOT / "var"
PG = os.environ.get("BENCH_PG", "postgresql://127.0.0.1:5432")
TARGETS = {"creation_ratio": 0.5, "notify_p99_ms": 100.0, "read_p99_ms": 20.0, "rss_mb": 150.0}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def dsn(database: str) -> str:
    return f"{PG}/{database}"


async def create_database(name: str) -> str:
    """A new, empty database `name` (one left by a killed run is dropped first); its URL."""
    await drop_database(name)
    conn = await asyncpg.connect(dsn("postgres"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return dsn(name)


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(dsn("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(latencies: list[float]) -> dict:
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
    }


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"
