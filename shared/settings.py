"""Settings shared by every service; each service subclasses with its own env prefix."""

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str, field: str) -> AliasChoices:
    # The HELPDESK_* variables are common to all services, so they ignore the service prefix;
    # the field name still works for tests that build settings directly.
    return AliasChoices(name, field)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    amqp_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/",
        validation_alias=_env("HELPDESK_AMQP_URL", "amqp_url"),
    )
    public_url: str = Field(
        "http://127.0.0.1:8080",
        validation_alias=_env("HELPDESK_PUBLIC_URL", "public_url"),
    )
    log_format: str | None = Field(None, validation_alias=_env("HELPDESK_LOG_FORMAT", "log_format"))
    # Shared by the panel and tickets: the panel proves with it that a request comes from the
    # panel (a reply's channel); unset, every request's channel is `api`.
    panel_key: SecretStr | None = Field(
        None, validation_alias=_env("HELPDESK_PANEL_KEY", "panel_key")
    )

    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080

    # Pool and time limits: a request must never hang while PostgreSQL or RabbitMQ is away.
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_command_timeout: float = 5.0
    db_acquire_timeout: float = 3.0
    amqp_reconnect_interval: float = 2.0
    outbox_poll_interval: float = 1.0
    consumer_prefetch: int = 32
