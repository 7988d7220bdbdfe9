"""Translations: English msgids in the code, catalogs in ``locale/<lang>/LC_MESSAGES/*.po``
(``messages.po`` plus one file per later domain, e.g. ``notices.po``; read in name order, merged).

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


def catalog_files(lang: str) -> list[Path]:
    return sorted((LOCALE_DIR / _CATALOG_NAMES.get(lang, "en") / "LC_MESSAGES").glob("*.po"))


@cache
def catalog(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in catalog_files(lang):
        with path.open("rb") as fh:
            po = read_po(fh)
        merged.update({_key(m.context, m.id): m.string for m in po if m.id and m.string and not m.fuzzy})
    return merged


def _key(context: str | None, message: str) -> str:
    """A catalog key: the msgid, or ``context\x04msgid`` for a message with a ``msgctxt`` (gettext's
    own convention), so one English word can have two Chinese renderings."""
    return f"{context}\x04{message}" if context else message


def gettext(lang: str, message: str) -> str:
    return catalog(lang).get(message, message)


def pgettext(lang: str, context: str, message: str) -> str:
    """``message`` in the sense ``context`` names ("Status" of an account, of a review…)."""
    return catalog(lang).get(_key(context, message), message)


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
