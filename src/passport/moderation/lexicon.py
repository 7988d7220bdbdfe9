"""Lexicons: data files (TOML) that say what the engine looks for. The bundled files live beside this
module (``lexicons/``); operators add their own in ``PASSPORT_MODERATION_LEXICON_DIR``. Every file may hold

- ``[[group]]``: ``category``, ``verdict`` (``block`` | ``review`` | ``allow``: an exemption that drops
  the hits inside it) or ``verdicts`` (field → verdict, fields not named are not checked), optional
  ``fields`` (with ``verdict``), optional ``context`` (a name from ``[contexts]``: the terms hit only
  when a word of that context is in the same text) and ``terms``;
- ``[contexts]``: name → words (e.g. ``official = ["官方", "客服", "认证", "记者"]``);
- ``[variants]``: a term → the spellings that stand for it (``"微信" = ["薇信", "威信", "VX", "V❤"]``),
  applied to every lexicon term that contains it and to the contact markers;
- ``[chars]``: a character → the one it looks or sounds like (``"а" = "a"``, ``"〇" = "0"``).

A lexicon's ``version`` is the digest of its files: the engine is built once per process per version."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BUNDLED = Path(__file__).parent / "lexicons"
VERDICTS = ("allow", "review", "block")  # in order of weight
FIELDS = ("nickname", "bio", "organization_name", "text")

# What a hit is about (msgids; the 15 categories of the agreement §五(三), then what CAC Order No. 10
# Arts. 7-8 name for account information). Users see the label of a blocking category, never the term.
CATEGORIES: dict[str, str] = {
    "constitution": "Opposing the basic principles of the Constitution",
    "national_security": "Endangering national security or unity",
    "national_honour": "Harming the honour and interests of the state",
    "heroes_martyrs": "Defaming heroes and martyrs",
    "terrorism_extremism": "Terrorism or extremism",
    "ethnic_hatred": "Inciting ethnic hatred or discrimination",
    "cults_superstition": "Cults or superstition",
    "rumor": "Rumours that disturb social order",
    "pornography": "Obscenity or pornography",
    "gambling": "Gambling",
    "violence": "Violence, terror or incitement to crime",
    "insult": "Insult or defamation",
    "illegal_assembly": "Inciting illegal assembly",
    "illegal_organisation": "Acting for an illegal organisation",
    "vulgar": "Vulgar or harassing content",
    "infringement": "Infringing the rights of others",
    "illegal": "Content prohibited by law",
    "impersonation": "Impersonating an organ of the party, state or army, the media, an enterprise or a public figure",
    "advertising": "Contact details or advertising",
    "illegal_services": "Illegal services",
    "strict_review": "Names of the state or the party",
}


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file and the bad value."""


@dataclass(frozen=True)
class Entry:
    term: str
    category: str
    verdicts: dict[str, str]  # field → verdict; a field not in it is not checked for this term
    source: str  # file name
    context: str | None = None


@dataclass(frozen=True)
class Lexicon:
    entries: tuple[Entry, ...]
    contexts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    variants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    chars: dict[str, str] = field(default_factory=dict)
    version: str = ""


def lexicon_files(directories: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for directory in directories:
        files.extend(sorted(Path(directory).glob("*.toml")))
    return files


def fingerprint(directories: Iterable[Path]) -> tuple:
    """What changes when a file is edited, added or removed (cheap: one stat per file)."""
    return tuple((str(path), path.stat().st_mtime_ns, path.stat().st_size) for path in lexicon_files(directories))


def load(directories: Sequence[Path]) -> Lexicon:
    digest = hashlib.sha256()
    entries: list[Entry] = []
    contexts: dict[str, list[str]] = {}
    variants: dict[str, list[str]] = {}
    chars: dict[str, str] = {}
    groups: list[tuple[str, int, dict]] = []
    for path in lexicon_files(directories):
        raw = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + raw + b"\0")
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise LexiconError(f"{path}: not a UTF-8 TOML file: {exc}") from None
        for name, words in data.get("contexts", {}).items():
            contexts.setdefault(name, []).extend(_strings(path, f"contexts.{name}", words))
        for term, spellings in data.get("variants", {}).items():
            variants.setdefault(term, []).extend(_strings(path, f"variants.{term}", spellings))
        for ch, target in data.get("chars", {}).items():
            if len(ch) != 1 or not isinstance(target, str) or len(target) != 1:
                raise LexiconError(f"{path}: chars: {ch!r} = {target!r} must map one character to one")
            chars[ch] = target
        groups.extend((path.name, index, group) for index, group in enumerate(data.get("group", [])))
    for source, index, group in groups:
        entries.extend(_entries(source, index, group, contexts))
    return Lexicon(tuple(entries), {k: tuple(v) for k, v in contexts.items()},
                   {k: tuple(v) for k, v in variants.items()}, chars, digest.hexdigest()[:16])


def _strings(path: Path, where: str, value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise LexiconError(f"{path}: {where} must be a list of non-empty strings, not {value!r}")
    return value


def _entries(source: str, index: int, group: dict, contexts: dict[str, list[str]]) -> list[Entry]:
    where = f"{source}: group {index + 1}"
    category = group.get("category")
    if category not in CATEGORIES:
        raise LexiconError(f"{where}: unknown category {category!r}")
    if "verdicts" in group:
        verdicts = dict(group["verdicts"])
    else:
        fields = group.get("fields", FIELDS)
        verdicts = dict.fromkeys(fields, group.get("verdict"))
    for name, verdict in verdicts.items():
        if name not in FIELDS:
            raise LexiconError(f"{where}: unknown field {name!r}")
        if verdict not in VERDICTS:
            raise LexiconError(f"{where}: unknown verdict {verdict!r} (block, review or allow)")
    context = group.get("context")
    if context is not None and context not in contexts:
        raise LexiconError(f"{where}: unknown context {context!r}")
    terms = group.get("terms")
    if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
        raise LexiconError(f"{where}: terms must be a list of non-empty strings")
    return [Entry(term, category, verdicts, source, context) for term in terms]
