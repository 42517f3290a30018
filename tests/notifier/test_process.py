"""`python -m services.notifier` killed with SIGKILL in the middle of a burst, then restarted:
every email arrives; duplicates (same Message-ID twice) are counted and reported.

`NOTIFIER_BURST=3000 NOTIFIER_KILLS=3 pytest tests/notifier/test_process.py -s` measures over
more events and kills.
"""

import asyncio
import os
import signal
import socket
import sys
from collections import Counter
from pathlib import Path

import aiohttp

from services.notifier.app import MIGRATIONS
from shared import events
from tests.notifier.conftest import Publisher
from tests.support.infra import DatabaseFactory
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
BURST = int(os.environ.get("NOTIFIER_BURST", "300"))
KILLS = int(os.environ.get("NOTIFIER_KILLS", "2"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start_process(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.notifier", cwd=ROOT, env=env, stdout=out, stderr=out
        )


async def ready(port: int, process: asyncio.subprocess.Process) -> None:
    async def answered() -> bool:
        assert process.returncode is None, "the notifier exited"
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/readyz") as response,
            ):
                return response.status == 200
        except aiohttp.ClientError:
            return False

    await wait_for(answered, timeout=30, interval=0.2, message="the notifier ready")


async def test_sigkill_mid_burst_loses_no_email(
    databases: DatabaseFactory,
    vhost: str,
    smtp: SmtpSink,
    publisher: Publisher,
    tmp_path: Path,
) -> None:
    http_port = free_port()
    env = os.environ | {
        "NOTIFIER_DATABASE_URL": await databases.migrated("notifier", MIGRATIONS),
        "HELPDESK_AMQP_URL": vhost,
        "HELPDESK_LOG_FORMAT": "json",
        "NOTIFIER_PORT": str(http_port),
        "NOTIFIER_INBOUND_PORT": str(free_port()),
        "NOTIFIER_SMTP_PORT": str(smtp.port),
        "NOTIFIER_AUTH_URL": "http://127.0.0.1:9",
        "NOTIFIER_RETRY_DELAYS": "[0.5, 1, 2, 4]",
    }
    log = tmp_path / "notifier.log"
    process = await start_process(env, log)
    try:
        await ready(http_port, process)
        sent = []
        for i in range(BURST):
            data = events.PasswordRecoveryRequested(
                client_number=str(5000 + i),
                email=f"burst{i}@example.com",
                language="es",
                reset_token=f"t{i}",
            )
            sent.append(await publisher.event(data))
        killed_at = []
        for kill in range(1, KILLS + 1):
            # Some progress since the last restart, so each kill hits a process at work.
            progress = (killed_at[-1] if killed_at else 0) + BURST // (4 * (KILLS + 1))
            await smtp.wait(max(BURST * kill // (KILLS + 1), progress), timeout=60)
            process.send_signal(signal.SIGKILL)
            await process.wait()
            killed_at.append(len(smtp.received))
            process = await start_process(env, log)
        wanted = {f"<{e.id}@helpdesk.example>" for e in sent}
        await wait_for(
            lambda: wanted <= {r.message_id for r in smtp.received},
            timeout=60 + BURST / 20,
            interval=0.2,
            message="every email of the burst",
        )
        counts = Counter(r.message_id for r in smtp.received)
        duplicates = sum(n - 1 for n in counts.values())
        print(
            f"\nSIGKILL burst: {BURST} events, killed {KILLS}x (after {killed_at} emails), "
            f"{len(counts)} distinct delivered, {duplicates} duplicate(s)"
        )
        assert set(counts) == wanted
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
