"""Normalisation with its map back to the original text (issue 17)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from passport.moderation.normalize import Normalizer

LOOK_ALIKES = {"一": "1", "〇": "0", "а": "a", "♥": "❤"}


def test_compact_form_folds_width_case_script_marks_and_separators():
    norm = Normalizer(LOOK_ALIKES).normalize("Ｚｏë 國\u200b務 院·ＱＱ①②〇")
    assert norm.compact == "zoe国务院qq120"
    assert norm.spaced == "zoe國務院·qq120"


def test_look_alikes_and_kept_symbols():
    norm = Normalizer(LOOK_ALIKES).normalize("V♥ 一〇一 ☭ 🇨🇳 ★!")
    assert norm.compact == "v❤101☭🇨🇳★"


def test_spaced_form_keeps_dots_and_at_signs_and_reads_ideographic_dots():
    norm = Normalizer({}).normalize("ｗｗｗ．ａ。ｃｏｍ ｂ＠ｃ点cn")
    assert norm.spaced == "www.a.comb@c.cn"


def test_spans_map_back_through_removed_and_expanded_characters():
    text = "a\u200b b ﬁ x"  # the ligature becomes two characters
    norm = Normalizer({}).normalize(text)
    assert norm.compact == "abfix"
    assert norm.span(0, 2) == (0, 4)  # "a\u200b b"
    assert norm.span(2, 4) == (5, 6)  # "ﬁ" alone
    assert text[slice(*norm.span(4, 5))] == "x"


@given(st.text(max_size=40))
def test_every_normalised_character_has_an_origin(text):
    norm = Normalizer(LOOK_ALIKES).normalize(text)
    assert len(norm.compact_origin) == len(norm.compact) and len(norm.spaced_origin) == len(norm.spaced)
    assert norm.compact_origin == sorted(norm.compact_origin)
    assert all(0 <= index < len(text) for index in norm.compact_origin + norm.spaced_origin)
