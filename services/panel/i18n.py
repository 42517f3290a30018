"""Spanish by default, English selectable: gettext catalogues compiled in memory at start-up
from the `.po` files in `locale/` (no compiled binaries in the repository), and dates in the
user's language and time zone."""

from datetime import datetime
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, get_timezone_location
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("es", "en")
DEFAULT_LANGUAGE = "es"
LANGUAGE_NAMES = {"es": "Español", "en": "English"}


def compile_catalogue(po_file: Path, language: str) -> Translations:
    with po_file.open("rb") as source:
        catalogue = read_po(source, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return Translations(compiled)


def load_translations(directory: Path = LOCALE_DIR) -> dict[str, Translations]:
    return {
        language: compile_catalogue(directory / language / "LC_MESSAGES" / "messages.po", language)
        for language in LANGUAGES
    }


def language_of(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


class Locale:
    """What a page needs to speak the user's language: `_` and dates."""

    def __init__(self, translations: Translations, language: str, time_zone: str) -> None:
        self.language = language
        self.gettext = translations.gettext
        self.zone = ZoneInfo(time_zone)

    def datetime(
        self, value: str | datetime, pattern: str = "d MMM y, HH:mm", *, zone: bool = False
    ) -> str:
        """A moment in the user's time zone, with the month named in their language; with
        `zone`, the zone named after it ("17:34, hora de Buenos Aires")."""
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        text = format_datetime(moment, pattern, tzinfo=self.zone, locale=self.language)
        return f"{text}, {self.zone_label}" if zone else text

    @property
    def zone_label(self) -> str:
        """The zone as people say it: its city ("hora de Buenos Aires", "Madrid time")."""
        if self.zone.key == "UTC":
            return "UTC"
        city = get_timezone_location(self.zone, locale=self.language, return_city=True)
        return self.gettext("%(city)s time") % {"city": city.rsplit("/", 1)[-1]}
