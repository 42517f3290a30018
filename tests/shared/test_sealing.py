"""Sealed one-time tokens: only the private key's holder opens them (pure logic)."""

import pytest

from shared import sealing


def test_sealed_value_opens_only_with_its_private_key() -> None:
    private = sealing.generate_private_key()
    public = sealing.public_key_of(private)
    sealed = sealing.seal(public, "the-reset-token")
    assert "the-reset-token" not in sealed
    assert sealed != sealing.seal(public, "the-reset-token")  # a fresh key each time
    assert sealing.open_sealed(private, sealed) == "the-reset-token"
    with pytest.raises(sealing.SealError):
        sealing.open_sealed(sealing.generate_private_key(), sealed)


@pytest.mark.parametrize(
    "value",
    [
        "the-reset-token",
        "",
        "sealed1:",
        "sealed1:!!!",
        "sealed1:" + "A" * 60,
        "sealed1:" + "A" * 2000,
    ],
)
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(sealing.SealError):
        sealing.open_sealed(sealing.generate_private_key(), value)


def test_an_altered_value_is_refused() -> None:
    private = sealing.generate_private_key()
    sealed = sealing.seal(sealing.public_key_of(private), "token")
    altered = sealed[:-2] + ("AA" if sealed[-2:] != "AA" else "BB")
    with pytest.raises(sealing.SealError):
        sealing.open_sealed(private, altered)


def test_keys_are_checked() -> None:
    with pytest.raises(ValueError):
        sealing.check_public_key("short")
    with pytest.raises(ValueError):
        sealing.public_key_of("not a key")
    public = sealing.public_key_of(sealing.generate_private_key())
    assert sealing.check_public_key(public) == public
