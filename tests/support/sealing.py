"""The sealing key pair of a test run: in-process auth seals one-time tokens with PUBLIC_KEY,
notifiers open them with PRIVATE_KEY, and tests open what auth's events carry with `opened`."""

from shared import sealing

PRIVATE_KEY = sealing.generate_private_key()
PUBLIC_KEY = sealing.public_key_of(PRIVATE_KEY)
# For services run as processes.
SEALING_ENV = {"NOTIFIER_SEALING_KEY": PRIVATE_KEY, "AUTH_SEALING_PUBLIC_KEY": PUBLIC_KEY}


def opened(value: str) -> str:
    return sealing.open_sealed(PRIVATE_KEY, value)


def sealed(token: str) -> str:
    """`token` as auth would send it; a value already sealed is left as it is."""
    return token if token.startswith(sealing.PREFIX) else sealing.seal(PUBLIC_KEY, token)
