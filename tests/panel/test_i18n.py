"""The catalogues: every text of the pages has its Spanish, and the guide's words are there."""

import re
from pathlib import Path

from babel.messages.pofile import read_po

from services.panel import admin, forms, views
from services.panel.app import CSRF_PAGE, ERROR_PAGES
from services.panel.i18n import LOCALE_DIR, load_translations

TEMPLATES = Path(views.__file__).with_name("templates")
_SENTENCE = re.compile(r'(?<!")"([A-Z][^"\n]{5,}[.?!])"(?!")')
# SPEC §8: the guide's Spanish labels and their English counterparts.
LABELS = {
    "Client number": "Número de cliente",
    "Password": "Clave",
    "Log in": "Ingresar",
    "Tickets": "Tickets",
    "Open new ticket": "Abrir nuevo ticket",
    "Service": "Servicio",
    "Category (subject)": "Categoría (asunto)",
    "Query": "Consulta",
    "Send": "Enviar",
    "Read ticket": "Leer ticket",
    "Reply to ticket": "Responder al ticket",
    "Reopen ticket": "Reabrir ticket",
    "Add to ticket": "Agregar al ticket",
    "Close ticket": "Cerrar ticket",
    "Open anyway": "Abrir de todos modos",
    "Forgot your access data?": "¿Olvidó sus datos de acceso?",
    "New password": "Nueva clave",
    "Repeat password": "Repetir clave",
    "Save": "Guardar",
    "Email": "Email",
    "Number": "Número",
    "Date": "Fecha",
    "Subject": "Asunto",
    "Status": "Estado",
    "Actions": "Acciones",
}


def used_msgids() -> set[str]:
    ids = set()
    for template in TEMPLATES.glob("*.html"):
        ids |= {m[1] for m in re.findall(r"""_\((["'])(.+?)\1\)""", template.read_text())}
    ids |= set(views.STATUS_LABELS.values()) | set(views.CLIENT_STATUS_LABELS.values())
    ids |= set(views.EMAIL_KINDS.values()) | set(views.DELIVERY_STATES.values())
    # The sentences the handlers show (failures, field errors): one-line string literals.
    for module in (views, admin):
        ids |= set(_SENTENCE.findall(Path(module.__file__).read_text()))
    for title, detail in [*ERROR_PAGES.values(), CSRF_PAGE]:
        ids |= {title, detail}
    ids |= {v for k, v in vars(forms).items() if k.isupper() and isinstance(v, str)}
    return ids


def test_every_text_of_the_pages_has_its_spanish() -> None:
    with (LOCALE_DIR / "es" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalogue = read_po(po)
    missing = [msgid for msgid in used_msgids() if not catalogue.get(msgid)]
    assert not missing
    untranslated = [m.id for m in catalogue if m.id and not m.string]
    assert not untranslated


def test_the_guides_labels_in_both_languages() -> None:
    translations = load_translations()
    for english, spanish in LABELS.items():
        assert translations["es"].gettext(english) == spanish
        assert translations["en"].gettext(english) == english


def test_statuses_in_spanish_words() -> None:
    es = load_translations()["es"]
    words = [es.gettext(label) for label in views.STATUS_LABELS.values()]
    assert words == ["Abierto", "Respondido", "Respuesta del cliente", "Cerrado"]
    # The client reads the same statuses from their side: whose turn it is.
    words = [es.gettext(label) for label in views.CLIENT_STATUS_LABELS.values()]
    assert words == ["Abierto", "Esperando su respuesta", "Pendiente de soporte", "Cerrado"]
