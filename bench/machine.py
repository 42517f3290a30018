"""What the machine and its processes spent: CPU seconds by process, resident memory, the load,
and a line that says which machine it was."""

import os
import platform
import resource
import subprocess
import time
from pathlib import Path

import asyncpg

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def describe() -> str:
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


def load_average() -> float:
    return os.getloadavg()[0]


def rss_mb(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"]}


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


class CpuMeter:
    """CPU seconds of the suite's processes, PostgreSQL (the postmaster and its children, alive
    or ended: every backend of this server, other runs' too) and RabbitMQ (beam.smp) over a
    phase."""

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


def per_ticket_ms(cpu: dict[str, float], made: int) -> str:
    """CPU milliseconds per created ticket by process, those worth showing."""
    return ", ".join(
        f"{name.split(' (')[0]} {seconds * 1000 / made:.2f}"
        for name, seconds in cpu.items()
        if made and seconds * 1000 / made >= 0.005 and name not in ("stolen", "wall")
    )
