"""Demo accounts for `make run`: an admin, an operator and a client with two services.

    python -m deploy.demo          (HELPDESK_DEMO=0 turns it off)

Runs before the services start, straight on auth's database (migrating it if needed) with the same
rules as the API; running it again changes nothing. Prints how to log in.
"""

import asyncio
import os

from services.auth import models, store
from services.auth.accounts import create_client, create_operator_command
from services.auth.app import MIGRATIONS, make_deps
from services.auth.keys import KeyStore
from services.auth.settings import AuthSettings
from shared import db

ADMIN = ("admin@demo.example", "Ada Admin", "demo admin passphrase")
OPERATOR = ("operador@demo.example", "Oscar Operador", "demo operator passphrase")
CLIENT_EMAIL = "cliente@example.com"
CLIENT_PASSWORD = "demo client passphrase"


async def ensure_demo(settings: AuthSettings) -> str:
    pool = await db.create_pool(settings.database_url)
    try:
        await db.migrate(settings.database_url, "auth", MIGRATIONS)
        keys = KeyStore(pool, access_token_ttl=settings.access_token_ttl, reload_interval=60)
        deps = make_deps(settings, keys)
        for (email, name, password), role in ((ADMIN, "admin"), (OPERATOR, "operator")):
            async with pool.acquire() as conn:
                exists = await store.get_operator_by_email(conn, email)
            if not exists:
                await create_operator_command(
                    pool, deps, email=email, name=name, role=role, password=password
                )
        async with pool.acquire() as conn:
            clients = await store.clients_by_email(conn, CLIENT_EMAIL)
        if clients:
            return str(clients[0]["client_number"])
        client = await create_client(
            pool,
            deps,
            models.ClientCreate(
                name="Juana Pérez",
                email=CLIENT_EMAIL,
                language="es",
                services=[
                    models.ServiceIn(name="Hosting Linux Plus — juanaperez.com"),
                    models.ServiceIn(name="Dominio juanaperez.com"),
                ],
                password=CLIENT_PASSWORD,
            ),
        )
        return client.client_number
    finally:
        await pool.close()


def main() -> None:
    if os.environ.get("HELPDESK_DEMO", "1").lower() in ("0", "false", "no", "off"):
        return
    settings = AuthSettings()
    client_number = asyncio.run(ensure_demo(settings))
    panel = os.environ.get("HELPDESK_PUBLIC_URL", "http://127.0.0.1:8080")
    print(
        f"""
  Helpdesk demo, at {panel}/login
    client:   Número de cliente {client_number}, Clave "{CLIENT_PASSWORD}"
    operator: {OPERATOR[0]} / "{OPERATOR[2]}"
    admin:    {ADMIN[0]} / "{ADMIN[2]}"
  Emails are kept as files in var/mail/. Ctrl-C stops everything.
""",
        flush=True,
    )


if __name__ == "__main__":
    main()
