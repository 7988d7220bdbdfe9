"""Translations: English msgids in the code, catalogs in ``locale/<lang>/LC_MESSAGES/messages.po``.

zh-CN is the default language; ``?lang=en``, the ``lang`` cookie or ``Accept-Language`` switch it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
_CATALOG_NAMES = {"zh-CN": "zh_CN", "en": "en"}


@cache
def catalog(lang: str) -> dict[str, str]:
    path = LOCALE_DIR / _CATALOG_NAMES.get(lang, "en") / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        po = read_po(fh)
    return {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}


def gettext(lang: str, message: str) -> str:
    return catalog(lang).get(message, message)


def pick_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("en"):
            return "en"
        if tag.startswith("zh"):
            return "zh-CN"
    return DEFAULT_LANGUAGE
