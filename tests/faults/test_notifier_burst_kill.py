"""`python -m services.notifier` killed with SIGKILL in the middle of a burst, then restarted:
every email arrives; duplicates (same Message-ID twice) are counted and reported.

A fault scenario, so it runs in `make faults` (one test at a time), beside test_3's kill under
the whole stack; `NOTIFIER_BURST=3000 NOTIFIER_KILLS=3 HELPDESK_FAULTS=1 pytest
tests/faults/test_notifier_burst_kill.py -s` measures over more events and kills.
"""

import os
import signal
from collections import Counter
from pathlib import Path

import asyncpg

from deploy.processes import Service, notifier_env
from services.notifier.app import MIGRATIONS
from shared import events
from tests.notifier.conftest import Publisher, publisher, smtp, vhost
from tests.support.infra import DatabaseFactory
from tests.support.sealing import SEALING_ENV
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_for

# The notifier's tests' fixtures: a vhost of its own, the SMTP sink, a publisher.
__all__ = ["publisher", "smtp", "vhost"]

BURST = int(os.environ.get("NOTIFIER_BURST", "300"))
KILLS = int(os.environ.get("NOTIFIER_KILLS", "2"))


async def test_sigkill_mid_burst_loses_no_email(
    databases: DatabaseFactory,
    vhost: str,
    smtp: SmtpSink,
    publisher: Publisher,
    tmp_path: Path,
) -> None:
    env = notifier_env(
        await databases.migrated("notifier", MIGRATIONS),
        vhost,
        smtp.port,
        NOTIFIER_RETRY_DELAYS="[0.5, 1, 2, 4]",
        # The relay is the sink on this host. The lease of an attempt is twice this plus a margin
        # (services/notifier/delivery.py), and the emails a kill interrupts wait for it to run out:
        # 9 s instead of the default 25 s.
        NOTIFIER_SMTP_TIMEOUT="2",
        **SEALING_ENV,
    )
    notifier = await Service("notifier", env, tmp_path).start()
    try:
        await notifier.wait_ready()
        sent = []

        async def publish(count: int) -> None:
            for _ in range(count):
                i = len(sent)
                data = events.PasswordRecoveryRequested(
                    client_number=str(5000 + i),
                    email=f"burst{i}@example.com",
                    language="es",
                    reset_token=f"t{i}",
                )
                sent.append(await publisher.event(data))

        # The burst in KILLS + 1 rounds; each round's events are published, and once a quarter
        # of them went out the process is killed, so each kill hits it at work (published all
        # at once, the burst was mostly sent before the test could kill it).
        rounds = KILLS + 1
        killed_at = []
        for _ in range(KILLS):
            await publish(BURST // rounds)
            await smtp.wait(len(sent) - (BURST // rounds) * 3 // 4, timeout=60)
            await notifier.stop(signal.SIGKILL)
            killed_at.append(len(smtp.received))
            await notifier.start()
        await publish(BURST - len(sent))
        wanted = {f"<{e.id}@helpdesk.example>" for e in sent}
        try:
            await wait_for(
                lambda: wanted <= {r.message_id for r in smtp.received},
                timeout=60 + BURST / 20,
                interval=0.2,
                message="every email of the burst",
            )
        except AssertionError:
            # What the missing emails went through, so a failure in CI can be read.
            missing = wanted - {r.message_id for r in smtp.received}
            ids = {m.strip("<>").split("@")[0] for m in missing}
            lines = [line for line in notifier.log().splitlines() if any(i in line for i in ids)]
            conn = await asyncpg.connect(env["NOTIFIER_DATABASE_URL"])
            try:
                rows = await conn.fetch(
                    "SELECT * FROM emails WHERE event_id::text = any($1::text[])", list(ids)
                )
            finally:
                await conn.close()
            raise AssertionError(
                f"{len(missing)} email(s) missing after kills at {killed_at}: {ids}\n"
                + "\n".join(str(dict(r)) for r in rows)
                + "\n"
                + "\n".join(lines[-60:])
            ) from None
        counts = Counter(r.message_id for r in smtp.received)
        duplicates = sum(n - 1 for n in counts.values())
        print(
            f"\nSIGKILL burst: {BURST} events, killed {KILLS}x (after {killed_at} emails), "
            f"{len(counts)} distinct delivered, {duplicates} duplicate(s)"
        )
        assert set(counts) == wanted
    finally:
        await notifier.stop()
