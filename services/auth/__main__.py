"""`python -m services.auth` serves; `create-operator` and `rotate-key` are admin commands."""

import argparse
import asyncio
import sys

from pydantic import ValidationError

from services.auth import keys
from services.auth.accounts import create_operator_command
from services.auth.app import MIGRATIONS, create_app, make_deps
from services.auth.keys import KeyStore
from services.auth.settings import AuthSettings
from shared import db
from shared.errors import ProblemError
from shared.logging import configure_logging
from shared.serve import serve


async def _create_operator(settings: AuthSettings, args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\r\n")
    pool = await db.create_pool(settings.database_url, connect_attempts=3)
    try:
        await db.migrate(settings.database_url, "auth", MIGRATIONS)
        key_store = KeyStore(pool, access_token_ttl=settings.access_token_ttl, reload_interval=60)
        deps = make_deps(settings, key_store)
        operator = await create_operator_command(
            pool, deps, email=args.email, name=args.name, role=args.role, password=password
        )
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            field = ".".join(str(p) for p in err["loc"])
            print(f"error: {field}: {err['msg']}", file=sys.stderr)
        return 2
    except ProblemError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        await pool.close()
    print(f"created {operator.role} {operator.email} (id {operator.id})")
    return 0


async def _rotate_key(settings: AuthSettings) -> int:
    pool = await db.create_pool(settings.database_url, connect_attempts=3)
    try:
        await db.migrate(settings.database_url, "auth", MIGRATIONS)
        async with pool.acquire() as conn:
            key = await keys.rotate(conn)
    finally:
        await pool.close()
    print(f"new signing key {key.kid}; running instances pick it up within a minute")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.auth")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the HTTP API (the default)")
    create = commands.add_parser("create-operator", help="create an operator or admin")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=["admin", "operator"])
    create.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from standard input",
    )
    commands.add_parser("rotate-key", help="start signing with a new key")
    args = parser.parse_args(argv)
    settings = AuthSettings()
    if args.command == "create-operator":
        configure_logging("auth", settings.log_format, stream=sys.stderr)
        return asyncio.run(_create_operator(settings, args))
    if args.command == "rotate-key":
        configure_logging("auth", settings.log_format, stream=sys.stderr)
        return asyncio.run(_rotate_key(settings))
    serve("auth", settings, create_app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
