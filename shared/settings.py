"""Settings shared by every service; each service subclasses with its own env prefix."""

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Network = IPv4Network | IPv6Network


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

    # The proxies (CIDRs, comma-separated) whose X-Forwarded-For entry names the client's
    # address (shared.http.client_address); empty: the header is ignored (SPEC 9.1).
    trusted_proxies: Annotated[tuple[Network, ...], NoDecode] = Field(
        (), validation_alias=_env("HELPDESK_TRUSTED_PROXIES", "trusted_proxies")
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

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return tuple(ip_network(v, strict=False) for v in value)
