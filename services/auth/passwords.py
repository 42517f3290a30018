"""Password rules (NIST SP 800-63B-4) and Argon2id hashing.

Length 15..256, never truncated, no composition rules; refused when it is a common password
(from the list shipped beside this module) or an obvious variation of one.
"""

import asyncio
import os
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.errors import ServiceUnavailable

T = TypeVar("T")

COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")
_SEQUENCES = ("0123456789" * 3, "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm")
_AFFIXES = re.compile(r"^[\d\W_]+|[\d\W_]+$")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line and not line.startswith("#"))


def _is_repetition(text: str) -> bool:
    """'aaaa…', 'abcabc…', 'passwordpassword': a short unit repeated."""
    return len(text) > 1 and (text + text).find(text, 1) < len(text)


def _is_sequence(text: str) -> bool:
    return any(text in seq or text in seq[::-1] for seq in _SEQUENCES)


def weakness(password: str, context: tuple[str, ...] = ()) -> str | None:
    """Why a password of acceptable length is refused, or None when it is acceptable."""
    lowered = password.lower()
    common = common_passwords()
    stem = _AFFIXES.sub("", lowered)
    if lowered in common or (stem and stem in common and len(stem) >= 4):
        return "This password is too common; choose another."
    if _is_repetition(lowered) or _is_sequence(lowered):
        return "This password is a repetition or a sequence; choose another."
    for word in (w.lower() for w in context if w):
        if stem == word or lowered == word or (len(word) >= 4 and not lowered.replace(word, "")):
            return "The password must not be your client number or email."
    return None


# What the auth process needs besides its Argon2 work areas.
PROCESS_RESERVE = 128 * 1024 * 1024
_CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


def memory_limit() -> int | None:
    """The memory this process may use (its container's limit), None when unlimited."""
    for path in _CGROUP_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 writes a huge number for "no limit"
            return int(text)
        return None
    return None


def default_concurrency(memory_cost_kib: int) -> int:
    """How many Argon2 computations may run at once: each takes `memory_cost_kib` of memory, so
    as many as fit in the container's limit after the process itself, at most one per CPU."""
    cpus = os.cpu_count() or 1
    limit = memory_limit()
    if limit is None:
        return cpus
    return max(1, min(cpus, (limit - PROCESS_RESERVE) // (memory_cost_kib * 1024)))


class Hasher:
    """Argon2id hashing off the event loop (a hash takes tens of milliseconds by design), at most
    `concurrency` at a time: each takes its memory cost at once, and a burst of logins must not
    take the process past its memory limit. A computation that cannot start within `wait`
    seconds is refused with 503 and Retry-After, so a flood is answered, not queued for ever."""

    def __init__(
        self,
        *,
        time_cost: int,
        memory_cost: int,
        parallelism: int,
        concurrency: int,
        wait: float,
    ) -> None:
        self._ph = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        self._turns = asyncio.Semaphore(concurrency)
        self._wait = wait
        # Verified when the user is unknown, so both cases take the same time.
        self._dummy = self._ph.hash("helpdesk-dummy-password-for-timing")

    async def _in_turn(self, work: Callable[[], T]) -> T:
        try:
            async with asyncio.timeout(self._wait):
                await self._turns.acquire()
        except TimeoutError:
            raise ServiceUnavailable(
                "Too many sign-ins at this moment; try again in a few seconds.", retry_after=2
            ) from None
        try:
            return await asyncio.to_thread(work)
        finally:
            self._turns.release()

    async def hash(self, password: str) -> str:
        return await self._in_turn(lambda: self._ph.hash(password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._ph.verify(password_hash or self._dummy, password) and bool(
                    password_hash
                )
            except (VerificationError, InvalidHashError):
                return False

        return await self._in_turn(check)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._ph.check_needs_rehash(password_hash)
