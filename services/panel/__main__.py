"""`python -m services.panel` serves the web Client Panel and the operator console."""

import sys

from aiohttp import web

from services.panel.app import create_app
from services.panel.settings import PanelSettings
from shared.logging import configure_logging


def main() -> int:
    settings = PanelSettings()
    configure_logging("panel", settings.log_format)
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
