from pydantic import PositiveInt
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", populate_by_name=True, extra="ignore")

    database_url: str = "postgresql://127.0.0.1:5432/helpdesk_auth"
    host: str = "127.0.0.1"
    port: int = 8081

    access_token_ttl: int = 900  # seconds: 15 minutes
    refresh_token_ttl: int = 30 * 86_400
    reset_token_ttl: int = 3_600  # recovery links live an hour
    welcome_token_ttl: int = 7 * 86_400  # a new client may read the welcome email days later
    email_change_token_ttl: int = 86_400  # SPEC 9.1: the confirmation link lives 24 h

    # At most this many recovery emails per client account and hour, so nobody can flood an
    # inbox through the public recovery route (the answer stays 202 either way).
    recovery_max_per_hour: int = 3
    # At most this many email changes asked for per client and day: each sends two emails. At
    # least one: the answer past the limit says when the oldest of the day expires.
    email_change_max_per_day: PositiveInt = 5

    # Login throttle (SPEC 9.1): failures of one username from one address...
    login_max_failures: int = 10
    login_window: int = 900  # seconds: 15 minutes
    # ...of one username from every address (a spray from many addresses)...
    login_username_max_failures: int = 100
    login_username_window: int = 3_600
    # ...and the usernames that failed from one address (one address trying many accounts).
    login_address_max_usernames: int = 20
    login_address_window: int = 3_600

    # Recovery requests are answered at once and turned into links in the background, by each
    # instance this often (the recovery email leaves at most this much later).
    recovery_poll_interval: float = 1.0

    # Argon2id cost (RFC 9106's second recommended option by default); tests lower it.
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65_536  # KiB
    argon2_parallelism: int = 4
    # How many hashes may be computed at once (each takes argon2_memory_cost); unset: as many as
    # the container's memory limit holds, at most one per CPU (passwords.default_concurrency).
    argon2_concurrency: int | None = None
    # How long a login may wait for its turn before it is answered 503 with Retry-After.
    argon2_wait: float = 2.0

    # A PEM-encoded EC P-256 private key to sign with; when unset, auth generates one and keeps it
    # in its database (and `rotate-key` replaces it).
    signing_key_pem: str | None = None
    # How often each instance re-reads the signing keys (to follow a rotation made elsewhere).
    key_reload_interval: float = 60.0

    # One-time tokens leave auth sealed for the notifier: with its public key (X25519,
    # base64url) when set, else the one the notifier publishes at /v1/sealing-key.
    sealing_public_key: str | None = None
    notifier_url: str = "http://127.0.0.1:8083"
