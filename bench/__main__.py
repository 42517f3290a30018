"""`make bench`: the suite's figures beside their ceilings, in one table.

    .venv/bin/python -m bench [--duration 10] [--rounds 5] [--reply-seconds 15] [--connections 16]
                              [--skip-reads]

Starts the suite as `make run` does (separate processes: auth, tickets, the notifier and an
SMTP sink that notes when each email is accepted; a second tickets instance for the two-instance
run) on databases helpdesk_bench_suite_* and a RabbitMQ vhost of its own (deleted at the end),
then measures from separate load-generator processes (wrk with bench/create_tickets.lua for
creation, bench/load.py for replies):
1. ticket creation through the API (client JWTs, allow_duplicate, outbox relayed: the rate
   counts tickets whose events were published) for 1 and 2 tickets instances (the two with
   pools of POOL_EACH connections), beside pgbench running the same SQL
   (bench/create_ticket.sql) with as many connections while tickets is stopped: --rounds
   rounds of the ceiling then the API, each round's ratio its own, the median round shown; in
   the one-instance rounds, between the two, the stack's floor: the same SQL through a bare
   aiohttp + asyncpg handler (bench/stack_floor.py);
2. notification latency, operator reply request -> email accepted by the sink, at 50 and 200
   replies per second (open loop), through one tickets instance with its default pool;
3. read latency with 1,000,000 tickets (bench/tickets_reads.py --reuse, as a step);
4. resident memory of every service process after the load.
Results: bench/results/suite.json (+ tickets_reads.json) and bench/results/*.png.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg

from bench.support import ROOT, dsn, percentile, recreate_database
from deploy.processes import CHEAP_ARGON2, Program, Service, clean_env, free_port, run_module
from deploy.rabbitmq import create_vhost, delete_vhost

RESULTS = ROOT / "bench" / "results"
DB_PREFIX = "helpdesk_bench_suite"
ADMIN = ("bench-admin@helpdesk.example", "bench admin passphrase 2026")
OPERATOR = ("bench-operator@helpdesk.example", "bench operator passphrase 2026")
CLIENT_PASSWORD = "bench client passphrase 2026"
TARGETS = {"creation_ratio": 0.5, "notify_p99_ms": 100.0, "read_p99_ms": 20.0, "rss_mb": 150.0}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def summary(latencies: list[float]) -> dict:
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
    }


def rss_mb(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"]}


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """utime + stime of a process so far (0 when it is gone), with `reaped_children` plus those
    of its children that have ended and been waited for (cutime + cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def children_of(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == parent:
                pids.append(int(entry.name))
    return pids


def machine_seconds() -> tuple[float, float]:
    """CPU seconds the whole machine spent working (user, nice, system, irq and softirq time:
    not idling or waiting for I/O), and those the hypervisor stole (the vCPUs had work, the host
    ran something else: a run on a crowded host shows it)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[i] for i in (0, 1, 2, 5, 6)) / CLOCK_TICKS, fields[7] / CLOCK_TICKS


class CpuMeter:
    """CPU seconds of the suite's processes, PostgreSQL (the postmaster and its children, alive
    or ended: every backend of this server) and RabbitMQ (beam.smp) over a phase."""

    def __init__(self, services: dict[str, int], postmaster: int | None, rabbit: int | None):
        self.services, self.postmaster, self.rabbit = services, postmaster, rabbit

    def snapshot(self) -> dict[str, float]:
        out = {name: cpu_seconds(pid) for name, pid in self.services.items()}
        if self.postmaster:
            # The backends alive, and those ended (pgbench's end with it): the postmaster
            # waits for each, which adds its CPU to the postmaster's children's times.
            out["postgresql"] = cpu_seconds(self.postmaster, reaped_children=True) + sum(
                cpu_seconds(p) for p in children_of(self.postmaster)
            )
        if self.rabbit:
            out["rabbitmq"] = cpu_seconds(self.rabbit)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["finished children (load generator, pgbench)"] = usage.ru_utime + usage.ru_stime
        out["machine"], out["stolen"] = machine_seconds()
        out["wall"] = time.monotonic()
        return out

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: round(after[k] - before.get(k, 0.0), 2) for k in after}


async def postmaster_pid(pool: asyncpg.Pool) -> int | None:
    try:
        directory = await pool.fetchval("SHOW data_directory")
        return int((Path(directory) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, asyncpg.PostgresError):
        return None


def rabbit_pid() -> int | None:
    out = subprocess.run(
        ["rabbitmqctl", "-q", "eval", "os:getpid()."], capture_output=True, text=True, timeout=60
    ).stdout
    digits = out.strip().strip('"')
    return int(digits) if digits.isdigit() else None


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    pg = subprocess.run(["pgbench", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} × {model}, {mem:.0f} GiB, {platform.system()} {platform.release()}; {pg}"
    )


async def run_load(kind: str, job: dict, timeout: float) -> dict:
    """bench/load.py in a process of its own."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.load",
        kind,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(json.dumps(job).encode()), timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode()[-2000:]}")
    return json.loads(out)


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


WARMUP_SECONDS = 2
# The database pool of each of the two tickets instances. PostgreSQL's rule of thumb gives a
# server (2 × cores + 1 disk) transactions at once; the instances share them, as a deployment
# sizes its pools to its database and not to its number of instances. On this 2-core machine
# PostgreSQL's CPU per ticket grew with the transactions at once (measured with two instances:
# 0.52 - 0.57 ms with 3 connections each, 0.57 - 0.70 with 5, 0.65 - 0.74 with the default 10).
# One instance keeps the default: a single process seldom has its 10 all busy, and fewer made it
# wait for connections.
POOL_EACH = math.ceil((2 * (os.cpu_count() or 1) + 1) / 2)


def wrk(url: str, lines: list[str], seconds: float) -> dict:
    """One run of ticket creation by wrk (bench/create_tickets.lua): one thread and connection
    per worker line. wrk is C: its cost per request is a fraction of a Python client's, so the
    services get the CPU the load would otherwise take."""
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


async def outbox_drained(tickets_db: asyncpg.Pool, timeout: float = 120) -> float:
    """Seconds until every event in the tickets outbox is published."""
    started = time.monotonic()
    while await tickets_db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the outbox did not drain in {timeout:.0f} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def creation_run(
    url: str, lines: list[str], seconds: float, tickets_db: asyncpg.Pool, meter: "CpuMeter"
) -> tuple[dict, dict]:
    """A 2 s warm-up, then the measured run, each followed by the outbox draining: the figure is
    of tickets whose events were published too (requests / (run + the relay's lag after it)),
    since an API that answers faster than its relay publishes only grows its outbox. The CPU
    counted is the measured run's and its drain's."""
    wrk(url, lines, WARMUP_SECONDS)
    await outbox_drained(tickets_db)
    before = meter.snapshot()
    run = wrk(url, lines, seconds)
    run["outbox_lag_s"] = await outbox_drained(tickets_db)
    cpu = meter.delta(before, meter.snapshot())
    run["answered_rps"] = run["requests"] / run["seconds"]
    run["rps"] = run["requests"] / (run["seconds"] + run["outbox_lag_s"])
    return run, cpu


@contextlib.asynccontextmanager
async def declared_queue(amqp_url: str, queue: str) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """`queue` as a passive declare finds it, on a connection of its own for the block."""
    connection = await aio_pika.connect(amqp_url, timeout=10)
    try:
        channel = await connection.channel()
        yield await channel.declare_queue(queue, passive=True)
    finally:
        await connection.close()


async def queue_depth(amqp_url: str, queue: str) -> int:
    """Messages ready in `queue` (a passive declare; rabbitmqctl would cost a CPU-second)."""
    async with declared_queue(amqp_url, queue) as declared:
        return declared.declaration_result.message_count or 0


async def purge_queue(amqp_url: str, queue: str) -> int:
    """Drop the messages waiting in `queue`; how many there were."""
    async with declared_queue(amqp_url, queue) as declared:
        return (await declared.purge()).message_count or 0


async def mark_outbox_sent(tickets_db: asyncpg.Pool) -> None:
    """The rows of a run with no relay (pgbench's, the floor's): no relay may publish them later,
    in the middle of another run."""
    await tickets_db.execute("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL")


async def drain(
    amqp_url: str, tickets_db: asyncpg.Pool, notifier_db: asyncpg.Pool, timeout: float
) -> float:
    """Wait until the outbox is relayed, the notifier's queue is empty and no email is being
    sent; seconds taken."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        unsent = await tickets_db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        busy = await notifier_db.fetchval(
            "SELECT count(*) FROM emails WHERE status NOT IN ('sent', 'dead')"
        )
        if unsent == 0 and busy == 0 and await queue_depth(amqp_url, "notifier.events") == 0:
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the suite did not drain in {timeout:.0f} s")


async def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


async def suite_benchmarks(args: argparse.Namespace, var: Path) -> dict:
    vhost = f"helpdesk-bench-{uuid.uuid4().hex[:8]}"
    amqp_url = create_vhost(vhost)
    names = {s: f"{DB_PREFIX}_{s}" for s in ("auth", "tickets", "notifier")}
    urls = {s: await recreate_database(n) for s, n in names.items()}
    sink_port = free_port()
    sink_out = var / "bench-sink.jsonl"
    sink_out.unlink(missing_ok=True)
    env = clean_env(
        HELPDESK_AMQP_URL=amqp_url,
        AUTH_DATABASE_URL=urls["auth"],
        TICKETS_DATABASE_URL=urls["tickets"],
        NOTIFIER_DATABASE_URL=urls["notifier"],
        NOTIFIER_SMTP_HOST="127.0.0.1",
        NOTIFIER_SMTP_PORT=str(sink_port),
        NOTIFIER_INBOUND_PORT=str(free_port()),
        **CHEAP_ARGON2,
    )
    for (email, password), role in ((ADMIN, "admin"), (OPERATOR, "operator")):
        code, _, err = await run_module(
            "services.auth", "create-operator", "--email", email, "--name", f"Bench {role}",
            "--role", role, "--password-stdin", env=env, stdin=password + "\n",
        )  # fmt: skip
        assert code == 0, err
    logs = var / "bench-logs"
    logs.mkdir(exist_ok=True)
    sink = Program(
        "sink", "bench.sink", env, logs, "--port", str(sink_port), "--out", str(sink_out)
    )
    auth = Service("auth", env, logs)
    env |= {"TICKETS_AUTH_URL": auth.url, "NOTIFIER_AUTH_URL": auth.url}
    tickets = [Service("tickets", env, logs, name=f"tickets-{i}") for i in (1, 2)]
    notifier_env = env
    notifier = Service("notifier", notifier_env, logs)
    # The second tickets instance starts only for the two-instance run: with both up, the one
    # instance serving the load might not be the one whose relay leads, and the figure would
    # be of one instance serving and another publishing.
    first_up = [sink, auth, tickets[0], notifier]
    programs: list[Program] = [sink, auth, *tickets, notifier]
    result: dict = {"vhost": vhost}
    tickets_db = await asyncpg.create_pool(urls["tickets"], min_size=1, max_size=2)
    notifier_db = await asyncpg.create_pool(urls["notifier"], min_size=1, max_size=2)
    try:
        for program in first_up:
            await program.start()
        for service in (auth, tickets[0], notifier):
            await service.wait_ready(timeout=60)
        pids = {s.name: s.proc.pid for s in (auth, tickets[0], notifier)}
        log(f"suite ready (auth, tickets, notifier, SMTP sink), pids {pids}")
        meter = CpuMeter(
            pids | {"sink": sink.proc.pid}, await postmaster_pid(tickets_db), rabbit_pid()
        )

        async def metered(service: Service) -> None:
            """Start `service` (again), wait until it is ready and count its CPU."""
            await service.start()
            await service.wait_ready(timeout=60)
            meter.services[service.name] = service.proc.pid

        result["cpu_seconds"] = cpu = {}
        result["memory_idle"] = {s.name: rss_mb(s.proc.pid) for s in (auth, tickets[0], notifier)}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

            async def call(method: str, url: str, headers=None, **kw) -> dict:
                async with http.request(method, url, headers=headers, **kw) as r:
                    assert r.status in (200, 201), f"{method} {url}: {r.status} {await r.text()}"
                    return await r.json()

            async def token(username: str, password: str) -> str:
                body = {"username": username, "password": password}
                return (await call("POST", f"{auth.url}/v1/token", json=body))["access_token"]

            admin = {"Authorization": f"Bearer {await token(*ADMIN)}"}
            operator = await token(*OPERATOR)
            # One client per load connection (ticket creation serialises per client), created
            # first and in order, plus one client whose replies the notifier emails.
            clients = []
            for i in range(args.connections + 1):
                body = {
                    "name": f"Bench client {i}",
                    "email": f"client{i}@bench.example",
                    "services": [{"name": f"Hosting bench {i}"}],
                    "password": CLIENT_PASSWORD,
                }
                clients.append(await call("POST", f"{auth.url}/v1/clients", admin, json=body))
            numbers = [c["client_number"] for c in clients]

            async def projected() -> bool:
                known_t = await tickets_db.fetchval(
                    "SELECT count(DISTINCT client_number) FROM client_services"
                    " WHERE client_number = ANY($1::text[])",
                    numbers,
                )
                known_n = await notifier_db.fetchval(
                    "SELECT count(*) FROM clients WHERE client_number::text = ANY($1::text[])"
                    " AND email IS NOT NULL",
                    numbers,
                )
                return known_t == known_n == len(numbers)

            await wait_until(projected, 60, "the clients in the tickets and notifier projections")
            load_clients, notify_client = clients[:-1], clients[-1]
            cbase, sbase = int(numbers[0]), int(load_clients[0]["services"][0]["id"])
            for i, c in enumerate(load_clients):  # the arithmetic bench/create_ticket.sql uses
                assert int(c["client_number"]) == cbase + i, c
                assert int(c["services"][0]["id"]) == sbase + i, c
            category = await call("GET", f"{tickets[0].url}/v1/categories", admin)
            category_id = (category["items"] if isinstance(category, dict) else category)[0]["id"]
            workers = [
                {
                    "token": await token(c["client_number"], CLIENT_PASSWORD),
                    "service_id": c["services"][0]["id"],
                }
                for c in load_clients
            ]

            # 1. Ticket creation: for 1 and then 2 instances, rounds of pgbench's ceiling then
            # the API, each round's ratio of two runs a few seconds apart (this host's speed
            # drifts by the minute, and the two runs need not feel it alike: the API is bound by
            # CPU, pgbench by its commits); the round with the median ratio is the one shown.
            # The notifier is stopped meanwhile: each ticket asks for a receipt email, and
            # sending hundreds a second would take the CPU the ceiling did not have to share.
            # Events wait in its durable queue (emptied before each round); it is started again
            # afterwards and drains the last round's.
            await notifier.stop()
            creation: dict = {
                "connections": args.connections,
                "seconds": args.duration,
                "rounds": args.rounds,
            }
            variables = {"cbase": cbase, "sbase": sbase, "cat": category_id}
            result["load_average"] = {}

            async def ceiling() -> tuple[dict, dict]:
                """pgbench with the database to itself: no relay may publish its rows (or take
                CPU from it), so every tickets instance is stopped meanwhile, and its rows are
                marked sent after."""
                for instance in tickets:
                    await instance.stop()
                before = meter.snapshot()
                run = pgbench(urls["tickets"], args.connections, args.duration, variables)
                spent = meter.delta(before, meter.snapshot())
                await mark_outbox_sent(tickets_db)
                return run, spent

            # The stack's floor (bench/stack_floor.py): the same SQL through bare aiohttp and
            # asyncpg, in one process, measured in the one-instance rounds between the ceiling
            # and the API, under the ceiling's conditions (tickets stopped, rows marked sent).
            floor_env = env | {
                "FLOOR_DATABASE_URL": urls["tickets"],
                "FLOOR_CBASE": str(cbase),
                "FLOOR_SBASE": str(sbase),
            }
            floor = Service(
                "floor", floor_env, logs, name="stack-floor", module="bench.stack_floor"
            )
            programs.append(floor)

            async def stack_floor(lines: list[str]) -> tuple[dict, dict]:
                await metered(floor)
                floor_lines = [f"127.0.0.1 {floor.port} {line.split(' ', 2)[2]}" for line in lines]
                wrk(f"{floor.url}/v1/tickets", floor_lines, WARMUP_SECONDS)
                before = meter.snapshot()
                run = wrk(f"{floor.url}/v1/tickets", floor_lines, args.duration)
                spent = meter.delta(before, meter.snapshot())
                await floor.stop()
                del meter.services[floor.name]
                await mark_outbox_sent(tickets_db)
                run["rps"] = run["requests"] / run["seconds"]
                return run, spent

            for count in (1, 2):
                for instance in tickets:
                    instance.env.pop("TICKETS_DB_POOL_MAX", None)
                    if count == 2:  # the two share what suits the database (see POOL_EACH)
                        instance.env["TICKETS_DB_POOL_MAX"] = str(POOL_EACH)
                if count == 2:
                    creation["pool_each_of_two"] = POOL_EACH
                lines = []
                for i, w in enumerate(workers):
                    host, port = tickets[i % count].url.removeprefix("http://").split(":")
                    lines.append(f"{host} {port} {w['token']} {w['service_id']} {category_id}")
                rounds = []
                for n in range(1, args.rounds + 1):
                    log(f"round {n}: pgbench, {args.connections} connections, {args.duration} s")
                    ceiling_run, ceiling_cpu = await ceiling()
                    log(f"  {ceiling_run['tps']:.0f} transactions/s")
                    if count == 1:
                        log(f"round {n}: stack floor, bare aiohttp + asyncpg, same SQL (wrk)")
                        floor_run, floor_cpu = await stack_floor(lines)
                        floor_run["ratio"] = floor_run["rps"] / ceiling_run["tps"]
                        log(
                            f"  {floor_run['rps']:.0f} tickets/s, ratio {floor_run['ratio']:.2f}"
                            f", errors {floor_run['errors']}; CPU s {floor_cpu}"
                        )
                    for instance in tickets[:count]:
                        await metered(instance)
                    if count == 2 and tickets[1].name not in result["memory_idle"]:
                        result["memory_idle"][tickets[1].name] = rss_mb(tickets[1].proc.pid)
                    # Each round starts with the notifier's queue empty: the receipts of the
                    # rounds before, tens of thousands of them in a quorum queue, cost RabbitMQ
                    # more per publish as they grew (0.22 -> 0.60 ms a ticket by the sixth).
                    await purge_queue(amqp_url, "notifier.events")
                    log(f"round {n}: API, {count} tickets instance(s), {args.connections} (wrk)")
                    load, load_cpu = await creation_run(
                        f"{tickets[0].url}/v1/tickets", lines, args.duration, tickets_db, meter
                    )
                    load["ratio"] = load["rps"] / ceiling_run["tps"]
                    log(
                        f"  {load['rps']:.0f} tickets/s with their events published"
                        f" ({load['answered_rps']:.0f} requests/s answered, outbox drained"
                        f" {load['outbox_lag_s']:.1f} s after the run), ratio {load['ratio']:.2f}"
                        f", errors {load['errors']}; CPU s {load_cpu}"
                    )
                    rounds.append(
                        {
                            "pgbench": ceiling_run,
                            "api": load,
                            "cpu_pgbench": ceiling_cpu,
                            "cpu_api": load_cpu,
                            "load_average": os.getloadavg()[0],
                        }
                    )
                    if count == 1:
                        rounds[-1] |= {"floor": floor_run, "cpu_floor": floor_cpu}
                shown = sorted(rounds, key=lambda r: r["api"]["ratio"])[len(rounds) // 2]
                creation[f"pgbench_{count}"] = shown["pgbench"]
                creation[f"api_{count}"] = shown["api"] | {
                    "ratios": [r["api"]["ratio"] for r in rounds]
                }
                creation[f"rounds_{count}"] = rounds
                cpu[f"pgbench_{count}"] = shown["cpu_pgbench"]
                cpu[f"api_{count}"] = shown["cpu_api"]
                if count == 1:
                    creation["floor_1"] = shown["floor"] | {
                        "ratios": [r["floor"]["ratio"] for r in rounds]
                    }
                    cpu["floor_1"] = shown["cpu_floor"]
                result["load_average"][f"api_{count}"] = shown["load_average"]
            after_creation = {t.name: rss_mb(t.proc.pid) for t in tickets}
            for instance in tickets:
                await instance.stop()
                instance.env.pop("TICKETS_DB_POOL_MAX", None)
            result["creation"] = creation
            # The rest runs on the suite as `make run` has it: one tickets instance with its
            # default pool.
            await metered(tickets[0])
            backlog = await queue_depth(amqp_url, "notifier.events")
            notifier = Service("notifier", notifier_env, logs)
            programs[-1] = notifier
            await metered(notifier)
            log(f"notifier started again; draining {backlog} receipt events")
            before = meter.snapshot()
            waited = await drain(amqp_url, tickets_db, notifier_db, args.drain_timeout)
            cpu["receipts_backlog"] = meter.delta(before, meter.snapshot())
            result["receipts_backlog"] = {
                "events": backlog,
                "seconds": waited,
                "emails_per_second": backlog / waited if waited else float("nan"),
            }
            log(
                f"  drained in {waited:.0f} s ({backlog / max(waited, 1e-9):.0f}/s)"
                f"; CPU s {cpu['receipts_backlog']}"
            )

            # 2. Notification latency: tickets to reply to, then open-loop replies.
            notify_token = await token(notify_client["client_number"], CLIENT_PASSWORD)
            reply_tickets = []
            for i in range(100):
                body = {
                    "service_id": notify_client["services"][0]["id"],
                    "category_id": category_id,
                    "body": f"Bench ticket {i} to reply to.",
                    "allow_duplicate": True,
                }
                headers = {"Authorization": f"Bearer {notify_token}"}
                made = await call("POST", f"{tickets[0].url}/v1/tickets", headers, json=body)
                reply_tickets.append(made["number"])
            await drain(amqp_url, tickets_db, notifier_db, args.drain_timeout)
            notification: dict = {}
            for rate in args.rates:
                log(f"replies at {rate}/s for {args.reply_seconds} s (open loop)")
                job = {
                    "url": tickets[0].url,
                    "token": operator,
                    "tickets": reply_tickets,
                    "rate": rate,
                    "duration": args.reply_seconds,
                }
                before = meter.snapshot()
                load = await run_load("replies", job, args.reply_seconds + 60)
                waited = await drain(amqp_url, tickets_db, notifier_db, args.drain_timeout)
                cpu[f"replies_{rate}"] = meter.delta(before, meter.snapshot())
                result["load_average"][f"replies_{rate}"] = os.getloadavg()[0]
                log(f"  CPU s {cpu[f'replies_{rate}']}")
                await asyncio.sleep(1)
                notification[str(rate)] = load
                log(f"  sent; suite drained {waited:.0f} s after the last request")
            result["memory_after_load"] = {
                auth.name: rss_mb(auth.proc.pid),
                **after_creation,
                notifier.name: rss_mb(notifier.proc.pid),
            }
            # tickets-1 was restarted after the creation runs: the larger of its two readings.
            after_replies = rss_mb(tickets[0].proc.pid)
            if after_replies["rss_mb"] > after_creation[tickets[0].name]["rss_mb"]:
                result["memory_after_load"][tickets[0].name] = after_replies
    finally:
        # The sink writes what it received when it stops: give it the time that takes.
        if sink.proc is not None and sink.proc.returncode is None:
            sink.proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sink.proc.wait(), 120)
        for program in reversed(programs):
            await program.stop()
        await tickets_db.close()
        await notifier_db.close()
        delete_vhost(vhost)
    # The sink wrote what it received on SIGTERM: match the reply tokens.
    accepted = {}
    for line in sink_out.read_text().splitlines():
        row = json.loads(line)
        if row["token"]:
            accepted.setdefault(row["token"], row["t"])
    result["emails_received"] = len(sink_out.read_text().splitlines())
    for rate, load in notification.items():
        rows = load.pop("rows")
        ok = [r for r in rows if r["status"] == 201]
        e2e = [(accepted[r["token"]] - r["due"]) * 1000 for r in ok if r["token"] in accepted]
        request = [r["latency_ms"] for r in ok]
        matched = [r for r in ok if r["token"] in accepted]
        span = (
            max(accepted[r["token"]] for r in matched) - min(r["due"] for r in matched)
            if matched
            else float("nan")
        )
        notification[rate] = {
            "rate": float(rate),
            "requests": len(rows),
            "accepted_201": len(ok),
            "errors": dict(Counter(str(r["status"]) for r in rows if r["status"] != 201)),
            "emails_matched": len(e2e),
            "lost": len(ok) - len(e2e),
            # Emails per second from the first reply due to the last email accepted.
            "emails_per_second": len(matched) / span if matched else float("nan"),
            "e2e": summary(e2e),
            "request": summary(request),
            "e2e_ms": sorted(e2e),
        }
    result["notification"] = notification
    for name in names.values():  # the suite's databases go; the reads database is kept
        conn = await asyncpg.connect(dsn("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
    return result


def reads_benchmark(requests: int) -> dict:
    log("reads with 1,000,000 tickets: python -m bench.tickets_reads --reuse")
    subprocess.run(
        [sys.executable, "-m", "bench.tickets_reads", "--reuse", "--requests", str(requests)],
        cwd=ROOT,
        check=True,
        timeout=900,
    )
    return json.loads((RESULTS / "tickets_reads.json").read_text())


def table(result: dict) -> str:
    lines = [f"Helpdesk benchmarks, {result['measured_at'][:16]} UTC; {result['machine']}"]
    loads = ", ".join(f"{k} {v:.1f}" for k, v in result.get("load_average", {}).items())
    lines.append(f"load average (1 min) at the end of each phase: {loads}")
    stolen = ", ".join(
        f"{k} {100 * v['stolen'] / (v['wall'] * (os.cpu_count() or 1)):.0f} %"
        for k, v in result.get("cpu_seconds", {}).items()
        if v.get("wall")
    )
    lines += [f"CPU stolen by the hypervisor, share of the machine's in each phase: {stolen}", ""]
    c = result["creation"]
    width = max(22, 5 * c["rounds"] + 1)  # the column of the rounds' ratios
    lines.append(
        f"1. Ticket creation, {c['connections']} connections, {c['seconds']} s each; "
        f"{c['rounds']} rounds of the ceiling then the API, the median round shown"
    )
    lines.append(
        f"   {'':38}{'tickets/s':>10}{'answered/s':>11}{'lag s':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'ratio':>7}  {'ratios of the rounds':{width}}target ≥ 0.50"
    )
    for count in (1, 2):
        pg, a = c[f"pgbench_{count}"], c[f"api_{count}"]
        lines.append(
            f"   {'pgbench, same SQL (ceiling)':38}{pg['tps']:>10.0f}{'':>11}{'':>7}"
            f"{pg['p50_ms']:>8.1f}{pg['p99_ms']:>8.1f}{1:>7.2f}"
        )
        if count == 1 and "floor_1" in c:
            f = c["floor_1"]
            ratios = " ".join(f"{r:.2f}" for r in f["ratios"])
            lines.append(
                f"   {'aiohttp + asyncpg alone (floor)':38}{f['rps']:>10.0f}{'':>11}"
                f"{'':>7}{f['p50_ms']:>8.1f}{f['p99_ms']:>8.1f}{f['ratio']:>7.2f}  {ratios:{width}}"
                + (f"  errors {f['errors']}" if f["errors"] else "")
            )
        label = f"tickets API, {count} instance{'s' if count > 1 else ''}"
        if count == 2 and "pool_each_of_two" in c:
            label += f" (pools of {c['pool_each_of_two']})"
        ratios = " ".join(f"{r:.2f}" for r in a["ratios"])
        errors = f"  errors {a['errors']}" if a["errors"] else ""
        lines.append(
            f"   {label:38}{a['rps']:>10.0f}{a['answered_rps']:>11.0f}{a['outbox_lag_s']:>7.1f}"
            f"{a['p50_ms']:>8.1f}{a['p99_ms']:>8.1f}{a['ratio']:>7.2f}  {ratios:{width}}"
            f"{'met' if a['ratio'] >= TARGETS['creation_ratio'] else 'NOT met'}" + errors
        )
    lines.append(
        "   (tickets/s: tickets whose events were published too, over the run and the outbox's"
        " lag after it; ratio: to the ceiling of the same round; floor: the statement alone"
        " through the stack, no token, validation, log or event, bench/stack_floor.py)"
    )
    lines.append("")
    lines.append("2. Notification, operator reply request -> email accepted by the SMTP sink")
    lines.append(
        f"   {'rate':>8}{'replies':>9}{'emails':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'reply p99':>11}{'emails/s':>10}  target p99 < 100 ms at 200/s"
    )
    for n in result["notification"].values():
        e = n["e2e"]
        lines.append(
            f"   {n['rate']:>6.0f}/s{n['accepted_201']:>9}{n['emails_matched']:>8}"
            f"{e['p50_ms']:>9.1f}{e['p99_ms']:>9.1f}{e['max_ms']:>9.1f}{n['request']['p99_ms']:>11.1f}"
            f"{n['emails_per_second']:>10.0f}"
            + (
                f"  {'met' if e['p99_ms'] < TARGETS['notify_p99_ms'] else 'NOT met'}"
                if n["rate"] == 200
                else ""
            )
            + (f"  errors {n['errors']}" if n["errors"] else "")
        )
    if "receipts_backlog" in result:
        b = result["receipts_backlog"]
        lines.append(
            f"   (the notifier alone, draining the {b['events']} receipts of part 1's last round:"
            f" {b['emails_per_second']:.0f} emails/s)"
        )
    if "reads" in result:
        r = result["reads"]
        lines.append("")
        lines.append(f"3. Reads with {r['tickets']:,} tickets, server-side (Server-Timing) vs SQL")
        lines.append(
            f"   {'case':34}{'p50 ms':>9}{'p99 ms':>9}{'SQL p50':>9}{'SQL p99':>9}{'ratio p50':>11}"
            "  target p99 < 20 ms"
        )
        for case in r["results"]:
            ok = case["server_p99_ms"] < TARGETS["read_p99_ms"]
            lines.append(
                f"   {case['case']:34}{case['server_p50_ms']:>9.2f}{case['server_p99_ms']:>9.2f}"
                f"{case['sql_p50_ms']:>9.2f}{case['sql_p99_ms']:>9.2f}{case['ratio_p50']:>10.1f}x"
                f"  {'met' if ok else 'NOT met'}"
            )
    lines.append("")
    lines.append("4. Resident memory (VmRSS) after the load, MB (peak VmHWM)   target < 150 MB")
    for name, m in result["memory_after_load"].items():
        idle = result["memory_idle"][name]["rss_mb"]
        ok = m["peak_rss_mb"] < TARGETS["rss_mb"]
        lines.append(
            f"   {name:12}{m['rss_mb']:>8.1f}  (peak {m['peak_rss_mb']:.1f}, idle {idle:.1f})"
            f"  {'met' if ok else 'NOT met'}"
        )
    lines.append("")
    lines.append("5. CPU milliseconds per created ticket, by process (and the load average)")
    cpu = result["cpu_seconds"]
    for key in ("pgbench_1", "floor_1", "api_1", "api_2"):
        if key not in cpu or key not in c:
            continue
        # The API's window is the measured run and the outbox's drain.
        made = c[key]["transactions"] if key.startswith("pgbench") else c[key]["requests"]
        parts = ", ".join(
            f"{name.split(' (')[0]} {seconds * 1000 / made:.2f}"
            for name, seconds in cpu[key].items()
            if seconds * 1000 / made >= 0.005 and name not in ("stolen", "wall")
        )
        load = result["load_average"].get(key)
        lines.append(f"   {key}: {parts}" + (f" (load {load:.1f})" if load is not None else ""))
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per creation run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="ceiling-then-API rounds")
    parser.add_argument("--reply-seconds", type=int, default=15)
    parser.add_argument("--rates", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--drain-timeout", type=float, default=240)
    parser.add_argument("--read-requests", type=int, default=300)
    parser.add_argument("--skip-reads", action="store_true", help="keep the last reads result")
    args = parser.parse_args()
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = {"measured_at": datetime.now(UTC).isoformat(), "machine": machine()}
    result |= await suite_benchmarks(args, var)
    if args.skip_reads:
        result["reads"] = json.loads((RESULTS / "tickets_reads.json").read_text())
    else:
        result["reads"] = reads_benchmark(args.read_requests)
    result["seconds"] = time.monotonic() - started
    (RESULTS / "suite.json").write_text(json.dumps(result, indent=2))
    from bench.plots import draw

    for path in draw(result, RESULTS):
        log(f"drew {path.relative_to(ROOT)}")
    print()
    print(table(result))
    print(f"\n({result['seconds']:.0f} s; results in bench/results/suite.json)")


if __name__ == "__main__":
    asyncio.run(main())
