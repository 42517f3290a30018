"""One-time tokens sealed for the notifier (SPEC §9.1): auth seals a link's token with the
notifier's public key, so the outbox, RabbitMQ, the other consumers and the dead letters only
ever carry a value that the notifier alone can open.

A sealed box in the manner of libsodium's: an ephemeral X25519 key agreement, HKDF-SHA256 and
AES-256-GCM. Each value has a key of its own, so the nonce can be constant.
"""

import base64
import binascii
import functools

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ALGORITHM = "X25519-HKDF-SHA256-AES256GCM"
PREFIX = "sealed1:"
_INFO = b"helpdesk sealed token"
_NONCE = bytes(12)
# A sealed link token is short; anything much longer is not one of ours.
MAX_SEALED_LENGTH = 1000


class SealError(ValueError):
    """Not a value sealed for this key."""


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_private_key() -> str:
    return _encode(X25519PrivateKey.generate().private_bytes_raw())


def _private(private_key: str) -> X25519PrivateKey:
    try:
        return X25519PrivateKey.from_private_bytes(_decode(private_key))
    except (ValueError, binascii.Error) as exc:
        raise ValueError("a sealing key is 32 bytes, base64url-encoded") from exc


@functools.lru_cache(maxsize=8)
def public_key_of(private_key: str) -> str:
    """The public half (kept: the notifier serves it on every GET /v1/sealing-key)."""
    return _encode(_private(private_key).public_key().public_bytes_raw())


def check_public_key(public_key: str) -> str:
    """`public_key` if it is one (ValueError otherwise)."""
    try:
        X25519PublicKey.from_public_bytes(_decode(public_key))
    except (ValueError, binascii.Error) as exc:
        raise ValueError("a sealing public key is 32 bytes, base64url-encoded") from exc
    return public_key


def _key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + ephemeral + recipient)
    return hkdf.derive(shared)


def seal(public_key: str, plaintext: str) -> str:
    recipient = X25519PublicKey.from_public_bytes(_decode(public_key))
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = ephemeral.public_key().public_bytes_raw()
    key = _key(ephemeral.exchange(recipient), ephemeral_raw, recipient.public_bytes_raw())
    sealed = AESGCM(key).encrypt(_NONCE, plaintext.encode(), None)
    return PREFIX + _encode(ephemeral_raw + sealed)


def open_sealed(private_key: str, value: str) -> str:
    """The plaintext of `value`; SealError when it was not sealed for this key."""
    if not value.startswith(PREFIX) or len(value) > MAX_SEALED_LENGTH:
        raise SealError("not a sealed value")
    try:
        raw = _decode(value.removeprefix(PREFIX))
    except (ValueError, binascii.Error) as exc:
        raise SealError("not a sealed value") from exc
    if len(raw) < 32 + 16:
        raise SealError("not a sealed value")
    private = _private(private_key)
    ephemeral_raw, sealed = raw[:32], raw[32:]
    try:
        ephemeral = X25519PublicKey.from_public_bytes(ephemeral_raw)
        key = _key(
            private.exchange(ephemeral), ephemeral_raw, private.public_key().public_bytes_raw()
        )
        return AESGCM(key).decrypt(_NONCE, sealed, None).decode()
    except (InvalidTag, ValueError, UnicodeDecodeError) as exc:
        raise SealError("sealed for another key, or altered") from exc
