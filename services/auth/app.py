"""auth's app factory: resources through cleanup contexts, in order."""

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from services.auth.accounts import Deps, process_recovery_requests, purge_spent
from services.auth.api import DEPS, ROUTES
from services.auth.keys import KeyStore
from services.auth.passwords import Hasher, default_concurrency
from services.auth.sealing_key import SealingKey
from services.auth.settings import AuthSettings
from shared import resources
from shared.auth import TOKEN_VERIFIER
from shared.http import create_base_app
from shared.openapi import add_routes

MIGRATIONS = Path(__file__).with_name("migrations")
# Spent tokens and old login failures are deleted at start and then this often.
PURGE_INTERVAL = 3_600.0


def make_hasher(settings: AuthSettings) -> Hasher:
    return Hasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
        concurrency=settings.argon2_concurrency or default_concurrency(settings.argon2_memory_cost),
        wait=settings.argon2_wait,
    )


def make_deps(settings: AuthSettings, keys: KeyStore) -> Deps:
    sealing_key = SealingKey(settings.notifier_url, configured=settings.sealing_public_key)
    return Deps(settings=settings, hasher=make_hasher(settings), keys=keys, sealing_key=sealing_key)


def create_app(settings: AuthSettings) -> web.Application:
    app = create_base_app("auth")

    async def keys_and_deps(app: web.Application) -> AsyncIterator[None]:
        keys = KeyStore(
            app[resources.POOL],
            access_token_ttl=settings.access_token_ttl,
            reload_interval=settings.key_reload_interval,
        )
        await keys.start(settings.signing_key_pem)
        app[DEPS] = deps = make_deps(settings, keys)
        app[TOKEN_VERIFIER] = keys
        yield
        await deps.sealing_key.close()
        await keys.stop()

    app.cleanup_ctx.extend(
        [
            resources.database(settings, "auth", MIGRATIONS),
            keys_and_deps,
            resources.broker(settings, "auth"),
            resources.start_broker,
            resources.outbox_relay(settings),
            # Recovery requests become links and emails here (and requests a crash left).
            resources.periodic(
                "recovery-links",
                settings.recovery_poll_interval,
                lambda app: process_recovery_requests(app[resources.POOL], app[DEPS]),
            ),
            resources.periodic(
                "purge-spent",
                PURGE_INTERVAL,
                lambda app: purge_spent(app[resources.POOL], settings),
            ),
        ]
    )
    add_routes(app, ROUTES, title="Helpdesk auth", version="1")
    return app
