"""Normalisation before matching, with a map back to the original positions.

Two forms of a text, each a character-by-character image of it (a character becomes zero, one or more
characters, never depends on its neighbours), so every normalised character knows the original one it
came from:

- ``compact``: compatibility decomposition (full-width → ASCII, ① → 1), combining marks dropped, case
  folded, traditional → simplified (OpenCC ``t2s``), look-alike characters and Chinese numerals mapped
  (``variants.toml`` ``[chars]``), and everything that is not a letter, a digit or a kept symbol removed:
  spaces, punctuation, zero-width and other format characters, emoji between characters. Lexicons and
  digit rules match here: ``国 务 院``, ``國務院`` and ``国\u200b务院`` are all ``国务院``.
- ``spaced``: the same without removing punctuation and symbols (only spaces and format characters go),
  for what needs its dots and at-signs: URLs, domains, email addresses.

Each form is built with ``str.translate`` over a per-process table filled on first sight of a character
(C speed on the path of every check); the position map is worked out only when a hit needs it."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from functools import cached_property

from opencc import OpenCC

_T2S = OpenCC("t2s.json")
# Symbols kept in the compact form: look-alikes map onto them (V❤ for 微信), party/state symbols are lexicon
# entries (☭, the flag's regional indicators).
_KEPT_SYMBOLS = frozenset("❤☭★") | frozenset(chr(c) for c in range(0x1F1E6, 0x1F200))


def _simplified(ch: str) -> str:
    if ord(ch) < 0x2E80:
        return ch
    converted = _T2S.convert(ch)
    return converted if len(converted) == 1 else ch


class CharTable(dict):
    """``ord(ch) → normalised str`` filled lazily (``str.translate`` asks ``__missing__`` once per
    character per process)."""

    def __init__(self, image: Callable[[str], str]) -> None:
        super().__init__()
        self._image = image

    def __missing__(self, code: int) -> str:
        value = self._image(chr(code))
        self[code] = value
        return value


class Normalizer:
    """The two forms for one look-alike table (``variants.toml`` ``[chars]``)."""

    def __init__(self, look_alikes: Mapping[str, str]) -> None:
        self.look_alikes = dict(look_alikes)
        self.compact_table = CharTable(self._compact_image)
        self.spaced_table = CharTable(self._spaced_image)

    def _base(self, ch: str) -> list[str]:
        out = []
        for part in unicodedata.normalize("NFKD", ch):
            if unicodedata.category(part) in ("Mn", "Me"):
                continue
            for folded in part.casefold():
                out.append(self.look_alikes.get(folded, folded))
        return out

    def _compact_image(self, ch: str) -> str:
        out = []
        for part in "".join(self._base(ch)):
            kind = unicodedata.category(part)
            if part in _KEPT_SYMBOLS:
                out.append(part)
            elif kind[0] in "LN":
                if kind == "Nd" or (kind[0] == "N" and unicodedata.digit(part, None) is not None):
                    out.append(str(unicodedata.digit(part)))
                elif kind[0] == "L":
                    out.append(_simplified(part))
            # Everything else (spaces, punctuation, format and control characters, other symbols) separates
            # nothing: it is what evasions put between characters.
        return "".join(out)

    def _spaced_image(self, ch: str) -> str:
        out = []
        for part in "".join(self._base(ch)):
            kind = unicodedata.category(part)
            if kind[0] in "CZ":
                continue
            if kind == "Nd" or (kind[0] == "N" and unicodedata.digit(part, None) is not None):
                out.append(str(unicodedata.digit(part)))
            else:
                out.append(_DOTS.get(part, part))
        return "".join(out)

    def normalize(self, text: str) -> Normalized:
        return Normalized(self, text, text.translate(self.compact_table))

    def compact(self, text: str) -> str:
        return text.translate(self.compact_table)


# Dots written otherwise in domains: 。 (ideographic full stop), 丶, 点.
_DOTS = {"。": ".", "｡": ".", "丶": ".", "点": ".", "點": "."}


class Normalized:
    """A text's two forms; the spaced one and the maps back are worked out on first use."""

    def __init__(self, normalizer: Normalizer, original: str, compact: str) -> None:
        self.normalizer, self.original, self.compact = normalizer, original, compact

    @cached_property
    def spaced(self) -> str:
        return self.original.translate(self.normalizer.spaced_table)

    def __repr__(self) -> str:
        return f"Normalized(compact={self.compact!r}, spaced={self.spaced!r})"

    @cached_property
    def compact_origin(self) -> list[int]:
        return _origin(self.original, self.normalizer.compact_table)

    @cached_property
    def spaced_origin(self) -> list[int]:
        return _origin(self.original, self.normalizer.spaced_table)

    def span(self, start: int, end: int, *, spaced: bool = False) -> tuple[int, int]:
        """The original ``[start, end)`` of normalised ``[start, end)`` (end exclusive, end > start)."""
        origin = self.spaced_origin if spaced else self.compact_origin
        return origin[start], origin[end - 1] + 1


def _origin(text: str, table: CharTable) -> list[int]:
    origin: list[int] = []
    for index, ch in enumerate(text):
        origin.extend([index] * len(table[ord(ch)]))
    return origin
