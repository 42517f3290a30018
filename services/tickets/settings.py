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
