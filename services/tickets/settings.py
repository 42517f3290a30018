from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class TicketsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETS_", populate_by_name=True, extra="ignore")

    database_url: str = "postgresql://127.0.0.1:5432/helpdesk_tickets"
    host: str = "127.0.0.1"
    port: int = 8082
    # Where the public keys that verify access tokens are (auth's JWKS route).
    auth_url: str = "http://127.0.0.1:8081"
    # The largest file a client or operator may upload (SPEC 9.2): 10 MiB.
    attachment_max_bytes: int = Field(10 * 1024 * 1024, gt=0)

    # Auto-close (SPEC 9.2): an answered ticket the client has not answered for this many days,
    # counted from the last operator reply, is closed by the system; 0 turns it off. A float,
    # so that tests can use seconds (2 / 86400).
    auto_close_days: float = Field(7.0, ge=0)
    # How often each instance looks for tickets to close.
    auto_close_interval_seconds: float = Field(300.0, gt=0)
