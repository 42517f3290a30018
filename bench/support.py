"""Helpers of the benchmarks: databases, service processes, percentiles."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgresql://127.0.0.1:5432")
AMQP = os.environ.get("HELPDESK_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def dsn(database: str) -> str:
    return f"{PG}/{database}"


async def recreate_database(name: str) -> str:
    conn = await asyncpg.connect(dsn("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return dsn(name)


async def database_exists(name: str) -> bool:
    conn = await asyncpg.connect(dsn("postgres"))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_command(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, *args],
        env=os.environ | env,
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{args} failed: {result.stderr[-2000:]}")
    return result.stdout


@asynccontextmanager
async def service(module: str, env: dict[str, str], port: int) -> AsyncIterator[str]:
    """Run `python -m <module>` until the block ends; yields its base URL once healthy."""
    log = open(ROOT / "var" / f"bench-{module.rsplit('.', 1)[-1]}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        env=os.environ | {"HELPDESK_LOG_FORMAT": "json"} | env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(url, process)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {process.returncode}")
            try:
                async with session.get(url + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready in {timeout}s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]
