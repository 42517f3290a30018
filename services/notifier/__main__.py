"""`python -m services.notifier` serves the notifier: HTTP (health, metrics, admin) and the
inbound SMTP listener, on one event loop."""

import sys

from aiohttp import web

from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from shared.logging import configure_logging


def main() -> int:
    settings = NotifierSettings()
    configure_logging("notifier", settings.log_format)
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
