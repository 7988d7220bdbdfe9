"""The engine: normalise, match every lexicon term at once (Aho-Corasick), apply the context and field
rules, the exemptions and the contact-detail patterns, and answer the heaviest verdict with the hits
that explain it. Deterministic: the same lexicon and text give the same answer."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import ahocorasick

from passport.moderation.lexicon import BUNDLED, FIELDS, VERDICTS, Entry, Lexicon, fingerprint, load
from passport.moderation.normalize import Normalized, Normalizer

_WEIGHT = {verdict: weight for weight, verdict in enumerate(VERDICTS)}


class Hit(NamedTuple):
    category: str
    start: int  # in the original text, end exclusive
    end: int
    rule: str  # "<lexicon file>:<term>" or "pattern:<name>"
    verdict: str

    def view(self) -> dict:
        return {"category": self.category, "start": self.start, "end": self.end, "rule": self.rule,
                "verdict": self.verdict}


class Decision(NamedTuple):  # a tuple: the answer of every check is built cheaply
    verdict: str  # allow | review | block
    normalized: str
    hits: tuple[Hit, ...]

    @property
    def category(self) -> str | None:
        """The category that decided it (the first hit with the decision's verdict)."""
        return next((hit.category for hit in self.hits if hit.verdict == self.verdict), None)

    def view(self) -> dict:
        return {"verdict": self.verdict, "normalized": self.normalized, "hits": [hit.view() for hit in self.hits]}


@dataclass(frozen=True)
class _Pattern:
    name: str
    regex: re.Pattern[str]
    category: str
    verdict: str
    spaced: bool  # runs on the spaced form (dots and at-signs kept)
    # What must be in the text for the pattern to be worth running (most texts have none of it):
    # "digits" (5 in a row), a marker the automaton saw ("@qq", "@wechat"), or a character of the spaced form.
    gate: str


_FIVE_DIGITS = re.compile(r"\d{5}")
_ASCII_ALNUM = re.compile(r"[a-z0-9]")  # every pattern needs one: most Chinese names skip them all
_MARKERS = {"@qq": "qq", "@wechat": "微信"}


_TLDS = ("com|cn|net|org|top|xyz|vip|cc|co|info|io|me|tv|club|shop|site|online|store|app|wang|ink|ltd|biz|"
         "pro|tk|ml|ga|gq|hk|tw|us|uk|jp|kr|ru|de")


def _contact_patterns(qq_markers: Sequence[str], wechat_markers: Sequence[str]) -> list[_Pattern]:
    """Contact details for improper gain (CAC Order No. 10 Art. 7): numbers only where they can be a
    contact (a mobile number, a landline, a QQ number after a QQ marker, a WeChat id after a WeChat
    marker), so a year or ``2008奥运`` passes."""
    qq = "|".join(sorted(map(re.escape, qq_markers), key=len, reverse=True))
    wechat = "|".join(sorted(map(re.escape, wechat_markers), key=len, reverse=True))
    return [
        _Pattern("mobile", re.compile(r"(?<!\d)(?:0?86)?1[3-9]\d{9}(?!\d)"), "advertising", "block", False,
                 "digits"),
        _Pattern("landline", re.compile(r"(?<!\d)(?:0[1-9]\d{8,10}|[48]00\d{7})(?!\d)"), "advertising", "block",
                 False, "digits"),
        _Pattern("qq", re.compile(rf"(?:{qq})(?:号码|号|群|id)?(?:是|为)?\d{{5,11}}(?!\d)"), "advertising", "block",
                 False, "@qq"),
        _Pattern("wechat", re.compile(rf"(?:{wechat})(?:号码|号|id)?(?:是|为)?[a-z0-9]{{6,20}}"), "advertising",
                 "block", False, "@wechat"),
        _Pattern("digits", re.compile(r"(?<!\d)\d{9,}(?!\d)"), "advertising", "review", False, "digits"),
        _Pattern("url", re.compile(r"(?:https?|ftp)://|www\."), "advertising", "block", True, "/w"),
        _Pattern("domain", re.compile(rf"(?<![a-z0-9-])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:{_TLDS})(?![a-z0-9])"),
                 "advertising", "block", True, "."),
        _Pattern("email", re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+"), "advertising", "block", True,
                 "@"),
    ]


class Engine:
    """One lexicon, compiled: build it once (``engine_for``) and share it; ``check`` is thread-safe."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self.version = lexicon.version
        self.normalizer = Normalizer(lexicon.chars)
        self._compact_table = self.normalizer.compact_table
        compact = self.normalizer.compact
        variants = {compact(term): sorted({compact(v) for v in spellings} - {""})
                    for term, spellings in lexicon.variants.items() if compact(term)}
        keys: dict[str, tuple[list[int], set[str]]] = {}
        for index, entry in enumerate(lexicon.entries):
            for key in _spellings(compact(entry.term), variants):
                keys.setdefault(key, ([], set()))[0].append(index)
        markers = {name: [name, *variants.get(name, ())] for name in ("qq", "微信")}
        contexts = dict(lexicon.contexts) | {gate: markers[term] for gate, term in _MARKERS.items()}
        for name, words in contexts.items():
            for word in words:
                for key in _spellings(compact(word), variants):
                    keys.setdefault(key, ([], set()))[1].add(name)
        self.automaton = ahocorasick.Automaton()
        for key, (indices, contexts) in keys.items():
            self.automaton.add_word(key, (len(key), tuple(indices), tuple(sorted(contexts))))
        self.automaton.make_automaton()
        self.size = len(keys)
        self.patterns = _contact_patterns(markers["qq"], markers["微信"])

    def check(self, text: str, field: str = "text") -> Decision:
        if field not in FIELDS:
            raise ValueError(f"unknown field {field!r}; one of {', '.join(FIELDS)}")
        text = text or ""
        compact = text.translate(self._compact_table)
        found: list[tuple[int, int, Entry, str]] = []
        contexts: set[str] = set()
        entries = self.lexicon.entries
        for last, (length, indices, names) in self.automaton.iter(compact):
            if names:
                contexts.update(names)
            for index in indices:
                entry = entries[index]
                verdict = entry.verdicts.get(field)
                if verdict is not None:
                    found.append((last + 1 - length, last + 1, entry, verdict))
        raw: list[tuple[int, int, str, str, str, bool]] = []
        if found:
            exempt = [(start, end) for start, end, _, verdict in found if verdict == "allow"]
            for start, end, entry, verdict in found:
                if verdict == "allow" or (entry.context is not None and entry.context not in contexts):
                    continue
                if any(a <= start and end <= b for a, b in exempt):
                    continue
                raw.append((start, end, entry.category, f"{entry.source}:{entry.term}", verdict, False))
        if not found and _ASCII_ALNUM.search(compact) is None:
            return Decision("allow", compact, ())
        norm = Normalized(self.normalizer, text, compact)
        if _ASCII_ALNUM.search(compact) is not None:
            raw.extend(self._patterns(norm, contexts))
        if not raw:
            return Decision("allow", compact, ())
        return _decision(norm, raw)


    def _patterns(self, norm: Normalized, contexts: set[str]) -> list[tuple[int, int, str, str, str, bool]]:
        found = []
        digits = _FIVE_DIGITS.search(norm.compact) is not None
        spaced = norm.spaced
        for pattern in self.patterns:
            gate = pattern.gate
            if gate == "digits":
                if not digits:
                    continue
            elif gate[0] == "@":
                if gate not in contexts or (gate == "@qq" and not digits):
                    continue
            elif not any(ch in spaced for ch in gate):
                continue
            for match in pattern.regex.finditer(spaced if pattern.spaced else norm.compact):
                if match.end() > match.start():
                    found.append((match.start(), match.end(), pattern.category, f"pattern:{pattern.name}",
                                  pattern.verdict, pattern.spaced))
        return found


def _decision(norm: Normalized, raw: list[tuple[int, int, str, str, str, bool]]) -> Decision:
    hits = {}
    for start, end, category, rule, verdict, spaced in raw:
        a, b = norm.span(start, end, spaced=spaced)
        hits.setdefault((a, b, category, rule), Hit(category, a, b, rule, verdict))
    # A hit inside a heavier one of the same category adds nothing (the digits of a mobile number).
    kept = [h for h in hits.values() if not any(o.category == h.category and _WEIGHT[o.verdict] > _WEIGHT[h.verdict]
                                                  and o.start <= h.start and h.end <= o.end for o in hits.values())]
    ordered = sorted(kept, key=lambda h: (-_WEIGHT[h.verdict], h.start, h.end, h.rule))
    return Decision(ordered[0].verdict, norm.compact, tuple(ordered))


def _spellings(key: str, variants: dict[str, list[str]]) -> set[str]:
    """The key and every spelling the variant table gives it (each variant term replaced once through)."""
    out = {key} if key else set()
    for term, spellings in variants.items():
        for current in list(out):
            if term in current:
                out.update(current.replace(term, spelling) for spelling in spellings)
    return out


# --- one engine per process per lexicon version -------------------------------------------------------

RELOAD_CHECK_SECONDS = 10.0
_lock = threading.Lock()
_current: dict[tuple[Path, ...], tuple[tuple, str, Engine, float]] = {}
NO_OPERATOR_ENTRIES: tuple[str, tuple[Entry, ...]] = ("", ())


def directories(extra: Path | None) -> tuple[Path, ...]:
    return (BUNDLED,) if extra is None else (BUNDLED, Path(extra))


def engine_for(extra: Path | None = None,
               operator: tuple[str, tuple[Entry, ...]] = NO_OPERATOR_ENTRIES) -> Engine:
    """The engine for the bundled lexicons plus ``extra`` (``PASSPORT_MODERATION_LEXICON_DIR``) plus the
    operators' entries (``operator``: their version and entries, from the database): built on first use,
    rebuilt when a file changes (looked at every ``RELOAD_CHECK_SECONDS``) or the operators' version moves."""
    dirs = directories(extra)
    now = time.monotonic()
    known = _current.get(dirs)
    if known is not None and known[1] == operator[0] and now - known[3] < RELOAD_CHECK_SECONDS:
        return known[2]
    with _lock:
        known = _current.get(dirs)
        if known is not None and known[1] == operator[0] and now - known[3] < RELOAD_CHECK_SECONDS:
            return known[2]
        stamp = fingerprint(dirs)
        if known is not None and known[0] == stamp and known[1] == operator[0]:
            engine = known[2]
        else:
            engine = Engine(with_entries(load(dirs), *operator))
        _current[dirs] = (stamp, operator[0], engine, now)
        return engine


def with_entries(lexicon: Lexicon, version: str, entries: tuple[Entry, ...]) -> Lexicon:
    """``lexicon`` with the operators' entries added (its version names both)."""
    if not version:
        return lexicon
    return Lexicon(lexicon.entries + tuple(entries), lexicon.contexts, lexicon.variants, lexicon.chars,
                   f"{lexicon.version}+{version}")
