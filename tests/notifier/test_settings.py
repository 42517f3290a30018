"""The notifier's variables of SPEC §2, with their defaults."""

import pytest
from pydantic import ValidationError

from services.notifier.settings import NotifierSettings


def test_defaults_are_those_of_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFIER_FROM", "NOTIFIER_PORT", "NOTIFIER_SMTP_PORT", "HELPDESK_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = NotifierSettings()
    assert settings.database_url == "postgresql://127.0.0.1:5432/helpdesk_notifier"
    assert (settings.host, settings.port) == ("127.0.0.1", 8083)
    assert settings.auth_url == "http://127.0.0.1:8081"
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == (
        "127.0.0.1",
        1025,
        False,
    )
    assert (settings.inbound_host, settings.inbound_port) == ("127.0.0.1", 2525)
    assert settings.sender == "Soporte <soporte@helpdesk.example>"


def test_variables_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_FROM", "Help <help@example.org>")
    monkeypatch.setenv("NOTIFIER_SMTP_PORT", "2626")
    monkeypatch.setenv("NOTIFIER_SMTP_STARTTLS", "true")
    monkeypatch.setenv("NOTIFIER_SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("NOTIFIER_INBOUND_PORT", "2600")
    monkeypatch.setenv("NOTIFIER_RETRY_DELAYS", "[1, 2]")
    monkeypatch.setenv("HELPDESK_PUBLIC_URL", "https://panel.example.org")
    settings = NotifierSettings()
    assert settings.sender == "Help <help@example.org>"
    assert (settings.smtp_port, settings.smtp_starttls, settings.inbound_port) == (2626, True, 2600)
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == "s3cret"
    assert settings.retry_delays == [1, 2]
    assert settings.public_url == "https://panel.example.org"


def test_relay_credentials_are_refused_without_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_SMTP_USERNAME", "helpdesk")
    monkeypatch.setenv("NOTIFIER_SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("NOTIFIER_SMTP_STARTTLS", "false")
    with pytest.raises(ValidationError, match="would be sent unencrypted"):
        NotifierSettings()
    monkeypatch.setenv("NOTIFIER_SMTP_ALLOW_PLAINTEXT_AUTH", "true")
    assert NotifierSettings().smtp_allow_plaintext_auth
    monkeypatch.setenv("NOTIFIER_SMTP_ALLOW_PLAINTEXT_AUTH", "false")
    monkeypatch.setenv("NOTIFIER_SMTP_STARTTLS", "true")
    assert NotifierSettings().smtp_username == "helpdesk"


def test_inbound_bounds_default_to_those_of_spec_9_3(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFIER_INBOUND_MAX_CONNECTIONS", "NOTIFIER_AUTO_REPLY_MAX_PER_CLIENT_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    settings = NotifierSettings()
    assert settings.inbound_max_connections == 20
    assert settings.auto_reply_max_per_client_address == 20
    monkeypatch.setenv("NOTIFIER_INBOUND_MAX_CONNECTIONS", "3")
    assert NotifierSettings().inbound_max_connections == 3
