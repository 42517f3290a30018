"""The notifier's settings (SPEC §2), env prefix NOTIFIER_.

Decisions where the SPEC is silent:
- `retry_delays` (seconds, JSON list in `NOTIFIER_RETRY_DELAYS`): one delay queue per value, so the
  growing back-off is 5 s, 30 s, 2 min, 10 min, 30 min, 1 h; after the last one the email is
  dead-lettered ("retries exhausted"), about 1 h 45 min after the first failure.
- `inbound_max_bytes`: 1 MiB. Replies to a notification are text; nothing inbound is kept
  beyond its headers, so there is no reason to read attachments.
- `inbound_parse_workers` / `inbound_parse_timeout`: 2 processes read inbound headers (beside a
  loop that needs one core); each message may wait 2 s for one and use it 2 s. Headers within
  SPEC §9.3's bounds take at most about 0.3 s on a loaded 2-core machine, so 2 s is only hit by
  a pathological message or a machine in trouble, both answered 451 (try later).
"""

from typing import Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared import sealing
from shared.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", populate_by_name=True, extra="ignore")

    database_url: str = "postgresql://127.0.0.1:5432/helpdesk_notifier"
    host: str = "127.0.0.1"
    port: int = 8083
    # Where the public keys that verify admin tokens are (auth's JWKS route).
    auth_url: str = "http://127.0.0.1:8081"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_starttls: bool = False
    # The relay's login over a connection without TLS only when this says it is meant (a relay
    # on the same host, say): otherwise the password would cross the network readable.
    smtp_allow_plaintext_auth: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = 10.0

    inbound_host: str = "127.0.0.1"
    inbound_port: int = 2525
    inbound_max_bytes: int = 1024 * 1024
    inbound_hostname: str = "helpdesk.example"
    inbound_max_connections: int = Field(20, ge=1)  # SPEC §9.3
    inbound_parse_workers: int = Field(2, ge=1)
    inbound_parse_timeout: float = Field(2.0, gt=0)
    # RFC 3834 §2: at most one automatic answer per sender (and ticket) in this many days.
    auto_reply_window_days: float = 7.0
    # ...and at most this many automatic answers to one sender in that window, whatever tickets
    # the subjects name (they are the sender's word, not checked).
    auto_reply_max_per_sender: int = 5
    # SPEC §9.3: automatic answers per SMTP client address (an IPv6 client's /64) and hour, so
    # a host forging ever new senders cannot make us mail ever new addresses.
    auto_reply_max_per_client_address: int = 20

    sender: str = Field(
        "Soporte <soporte@helpdesk.example>",
        validation_alias=AliasChoices("NOTIFIER_FROM", "sender"),
    )
    retry_delays: list[float] = [5, 30, 120, 600, 1800, 3600]
    # The private key that opens the tokens auth seals (shared/sealing.py); unset, one is
    # generated on first start and kept in the database.
    sealing_key: SecretStr | None = None

    consumer_prefetch: int = 16

    @field_validator("sealing_key")
    @classmethod
    def _sealing_key_is_one(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            sealing.public_key_of(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _credentials_travel_encrypted(self) -> Self:
        has_login = self.smtp_username is not None or self.smtp_password is not None
        if has_login and not self.smtp_starttls and not self.smtp_allow_plaintext_auth:
            raise ValueError(
                "NOTIFIER_SMTP_USERNAME/PASSWORD are set but NOTIFIER_SMTP_STARTTLS is false: "
                "the password would be sent unencrypted. Turn STARTTLS on, or set "
                "NOTIFIER_SMTP_ALLOW_PLAINTEXT_AUTH=true if the relay is reached privately."
            )
        return self
