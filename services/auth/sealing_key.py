"""The notifier's public sealing key, with which every one-time token is sealed before it leaves
auth (SPEC §9.1): configured (`AUTH_SEALING_PUBLIC_KEY`), or fetched from the notifier as the
services fetch auth's JWKS, and fetched again now and then to follow a new key."""

import asyncio
import time

import aiohttp
import structlog

from shared import sealing
from shared.errors import ServiceUnavailable

log = structlog.get_logger(__name__)


class SealingKey:
    def __init__(
        self,
        notifier_url: str,
        *,
        configured: str | None = None,
        refresh_interval: float = 300.0,
        timeout: float = 3.0,
    ) -> None:
        self._url = notifier_url.rstrip("/") + "/v1/sealing-key"
        self._key = sealing.check_public_key(configured) if configured else None
        self._configured = bool(configured)
        self._refresh_interval = refresh_interval
        self._timeout = timeout
        self._fetched_at = float("-inf")
        self._fetches = 0
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _due(self) -> bool:
        return not self._configured and (
            self._key is None or time.monotonic() - self._fetched_at >= self._refresh_interval
        )

    async def current(self) -> str:
        """The public key; 503 when it was never learnt and the notifier cannot be asked."""
        if self._due():
            fetches = self._fetches
            async with self._lock:
                # A fetch made while this request waited for the lock answers it too: while the
                # notifier is away, waiting requests must not each wait out a time limit.
                if self._fetches == fetches and self._due():
                    await self._refresh()
                    self._fetches += 1
        if self._key is None:
            raise ServiceUnavailable("Emails cannot be prepared right now; try again shortly.")
        return self._key

    async def _refresh(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        try:
            async with self._session.get(self._url) as response:
                response.raise_for_status()
                document = await response.json()
            key = sealing.check_public_key(str(document["public_key"]))
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.warning("sealing_key.fetch_failed", error=repr(exc)[:300])
            if self._key is not None:
                self._fetched_at = time.monotonic()  # kept, and asked again after the interval
            return
        if key != self._key:
            log.info("sealing_key.learnt")
        self._key = key
        self._fetched_at = time.monotonic()

    async def seal(self, token: str) -> str:
        return sealing.seal(await self.current(), token)
