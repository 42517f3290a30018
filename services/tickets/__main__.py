"""`python -m services.tickets` serves the tickets API."""

import sys

from aiohttp import web

from services.tickets.app import create_app
from services.tickets.settings import TicketsSettings
from shared.logging import configure_logging


def main() -> int:
    settings = TicketsSettings()
    configure_logging("tickets", settings.log_format)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        shutdown_timeout=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
