from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class PanelSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PANEL_", populate_by_name=True, extra="ignore")

    database_url: str = "postgresql://127.0.0.1:5432/helpdesk_panel"
    host: str = "127.0.0.1"
    port: int = 8080
    auth_url: str = "http://127.0.0.1:8081"
    tickets_url: str = "http://127.0.0.1:8082"
    # The notifier's API: delivery status on operators' ticket pages, dead letters for admins.
    notifier_url: str = "http://127.0.0.1:8083"
    # Signs the session cookie; generated once and kept in the panel's database when unset.
    cookie_secret: str | None = None
    # A session ends after this long without a request (seconds).
    session_idle_ttl: int = 8 * 3600
    # A page waits at most this long for auth or tickets before showing the "service down" page.
    backend_timeout: float = 5.0
    # The access token is refreshed when it has less than this left (seconds).
    token_refresh_margin: int = 60
    # Dates are shown in this time zone.
    time_zone: str = "Europe/Madrid"
    # Each attached file is refused over this size, as tickets refuses it (its
    # TICKETS_ATTACHMENT_MAX_BYTES); the panel stops reading a file there.
    attachment_max_bytes: int = 10 * 1024 * 1024
