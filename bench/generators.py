"""The load generators, each a process of its own so that none shares the services' event loop:
wrk (bench/create_tickets.lua) for ticket creation, pgbench (bench/create_ticket.sql) for the
database's ceiling, bench/load.py for open-loop replies."""

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.support import ROOT, summary

WARMUP_SECONDS = 2


def wrk(url: str, lines: list[str], seconds: float) -> dict:
    """One run of ticket creation by wrk: one thread and connection per worker line. wrk is C:
    its cost per request is a fraction of a Python client's, so the services get the CPU the
    load would otherwise take."""
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "workers.txt"
        job.write_text("\n".join(lines) + "\n")
        env = {**os.environ, "BENCH_JOB": str(job)}
        script = str(ROOT / "bench" / "create_tickets.lua")
        n = str(len(lines))
        command = ["wrk", "-t", n, "-c", n, "-d", f"{seconds}s", "--timeout", "10s"]
        result = subprocess.run(
            [*command, "-s", script, url],
            capture_output=True, text=True, env=env, timeout=seconds + 60, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed: {result.stderr[-2000:]}")
    run = json.loads(result.stdout.strip().splitlines()[-1])
    errors = {k: run[k] for k in ("non_2xx", "socket_errors") if run[k]}
    return {
        "requests": run["requests"] - run["non_2xx"],
        "errors": errors,
        "seconds": run["seconds"],
        **{k: run[k] for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")},
    }


def pgbench(url: str, connections: int, seconds: int, variables: dict[str, int]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "pgbench"
        args = ["pgbench", "-n", "-M", "prepared", "-c", str(connections), "-j", "2"]
        args += ["-T", str(seconds), "-f", str(ROOT / "bench" / "create_ticket.sql")]
        args += ["-l", f"--log-prefix={prefix}"]
        for key, value in variables.items():
            args += ["-D", f"{key}={value}"]
        result = subprocess.run(
            [*args, url], capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"pgbench failed: {result.stderr[-2000:]}")
        latencies = []
        for path in Path(tmp).glob("pgbench*"):
            for line in path.read_text().splitlines():
                latencies.append(int(line.split()[2]) / 1000)
    tps = float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    return {"tps": tps, "transactions": len(latencies), **summary(latencies)}


async def replies(job: dict, timeout: float) -> dict:
    """bench/load.py replies: open-loop operator replies at a fixed rate."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.load",
        "replies",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(json.dumps(job).encode()), timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode()[-2000:]}")
    return json.loads(out)
