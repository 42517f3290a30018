"""`python -m services.panel` serves the web Client Panel and the operator console."""

from services.panel.app import create_app
from services.panel.settings import PanelSettings
from shared.serve import serve


def main() -> None:
    serve("panel", PanelSettings(), create_app)


if __name__ == "__main__":
    main()
