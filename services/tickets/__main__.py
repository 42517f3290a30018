"""`python -m services.tickets` serves the tickets API."""

from services.tickets.app import create_app
from services.tickets.settings import TicketsSettings
from shared.serve import serve


def main() -> None:
    serve("tickets", TicketsSettings(), create_app)


if __name__ == "__main__":
    main()
