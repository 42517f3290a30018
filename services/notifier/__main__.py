"""`python -m services.notifier` serves the notifier: HTTP (health, metrics, admin) and the
inbound SMTP listener, on one event loop."""

from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from shared.serve import serve


def main() -> None:
    serve("notifier", NotifierSettings(), create_app)


if __name__ == "__main__":
    main()
