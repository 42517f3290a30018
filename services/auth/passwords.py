"""Password rules (NIST SP 800-63B-4) and Argon2id hashing.

Length 15..256, never truncated, no composition rules; refused when it is a common password
(from the list shipped beside this module) or an obvious variation of one.
"""

import asyncio
import re
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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


class Hasher:
    """Argon2id hashing off the event loop (a hash takes tens of milliseconds by design)."""

    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int) -> None:
        self._ph = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        # Verified when the user is unknown, so both cases take the same time.
        self._dummy = self._ph.hash("helpdesk-dummy-password-for-timing")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._ph.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._ph.verify(password_hash or self._dummy, password) and bool(
                    password_hash
                )
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._ph.check_needs_rehash(password_hash)
