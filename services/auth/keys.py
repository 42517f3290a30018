"""The signing keys of this auth instance: created on first start, re-read periodically so that
a rotation made by one instance (or by `rotate-key`) reaches every other instance."""

import asyncio
import contextlib
import json
import time

import asyncpg
import structlog

from services.auth import store
from services.auth.tokens import KeyRing, SigningKey, generate_signing_key, signing_key_from_pem
from shared.auth import Principal, token_kid
from shared.db import DB_UNAVAILABLE_ERRORS

log = structlog.get_logger(__name__)

# A retired key keeps verifying for this long beyond the access-token life, for clock skew.
_GRACE_MARGIN = 300


async def ensure_signing_key(conn: asyncpg.Connection, configured_pem: str | None) -> None:
    """A configured key becomes the signing key; otherwise one is generated if none exists."""
    async with conn.transaction():
        await store.lock_signing_keys(conn)
        if configured_pem:
            key = signing_key_from_pem(configured_pem)
            await store.insert_signing_key(conn, key)
            await store.retire_keys_except(conn, key.kid)
        elif await store.current_signing_key(conn) is None:
            key = generate_signing_key()
            await store.insert_signing_key(conn, key)
            log.info("auth.signing_key_created", kid=key.kid)


async def rotate(conn: asyncpg.Connection) -> SigningKey:
    """A new signing key; the old ones keep verifying until tokens they signed have expired."""
    async with conn.transaction():
        await store.lock_signing_keys(conn)
        key = generate_signing_key()
        await store.insert_signing_key(conn, key)
        await store.retire_keys_except(conn, key.kid)
    return key


async def load_key_ring(conn: asyncpg.Connection, access_token_ttl: int) -> KeyRing:
    current = await store.current_signing_key(conn)
    if current is None:
        raise RuntimeError("no signing key; ensure_signing_key must run first")
    signing = SigningKey(current["kid"], current["private_pem"], json.loads(current["public_jwk"]))
    verifying = {
        row["kid"]: json.loads(row["public_jwk"])
        for row in await store.verifying_keys(conn, access_token_ttl + _GRACE_MARGIN)
    }
    return KeyRing(signing=signing, verifying=verifying)


class KeyStore:
    """Holds the current KeyRing and refreshes it in the background."""

    def __init__(self, pool: asyncpg.Pool, *, access_token_ttl: int, reload_interval: float):
        self._pool = pool
        self._ttl = access_token_ttl
        self._interval = reload_interval
        self._task: asyncio.Task | None = None
        self.ring: KeyRing
        self._last_reload = 0.0

    async def start(self, configured_pem: str | None) -> None:
        async with self._pool.acquire() as conn:
            await ensure_signing_key(conn, configured_pem)
        await self.reload()
        self._task = asyncio.create_task(self._reload_forever(), name="auth-key-reload")

    async def reload(self) -> None:
        async with self._pool.acquire(timeout=5) as conn:
            self.ring = await load_key_ring(conn, self._ttl)
        self._last_reload = time.monotonic()

    async def verify(self, token: str) -> Principal:
        """TokenVerifier for auth's own routes; an unknown kid (a key rotated by another
        instance) triggers an early reload, at most once a second."""
        if token_kid(token) not in self.ring.verifying and time.monotonic() - self._last_reload > 1:
            with contextlib.suppress(*DB_UNAVAILABLE_ERRORS):
                await self.reload()
        return self.ring.verify(token)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.reload()
            except Exception as exc:  # the database may be away; keep the keys we have
                log.warning("auth.key_reload_failed", error=repr(exc))
