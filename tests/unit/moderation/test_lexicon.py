"""Lexicon files (issue 17): the format, its checks, operators' own files and their exemptions."""

from __future__ import annotations

import pytest

from passport.moderation import engine as engines
from passport.moderation.engine import Engine
from passport.moderation.lexicon import BUNDLED, CATEGORIES, LexiconError, load


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_lexicons_load_and_use_known_categories():
    lexicon = load([BUNDLED])
    assert len(lexicon.entries) > 300
    assert {entry.category for entry in lexicon.entries} <= set(CATEGORIES)
    assert "official" in lexicon.contexts and "微信" in lexicon.variants and lexicon.chars["〇"] == "0"


def test_an_operators_file_adds_terms_and_exemptions(tmp_path):
    write(tmp_path / "local.toml", '''
[[group]]
category = "advertising"
verdict = "block"
terms = ["某某推广群"]

[[group]]
category = "strict_review"
verdict = "allow"
fields = ["nickname"]
terms = ["中国象棋"]
''')
    engine = Engine(load([BUNDLED, tmp_path]))
    assert engine.check("某某推廣群", "bio").verdict == "block"
    assert engine.check("中国象棋爱好者", "nickname").verdict == "allow"
    assert Engine(load([BUNDLED])).check("中国象棋爱好者", "nickname").verdict == "review"


def test_a_changed_file_gives_a_new_version_and_a_rebuilt_engine(tmp_path, monkeypatch):
    path = write(tmp_path / "local.toml", '[[group]]\ncategory = "vulgar"\nverdict = "block"\nterms = ["甲乙丙"]\n')
    monkeypatch.setattr(engines, "RELOAD_CHECK_SECONDS", 0.0)
    before = engines.engine_for(tmp_path)
    assert before.check("甲乙丙", "bio").verdict == "block"
    write(path, '[[group]]\ncategory = "vulgar"\nverdict = "block"\nterms = ["丁戊己庚"]\n')
    after = engines.engine_for(tmp_path)
    assert after is not before and after.version != before.version
    assert after.check("甲乙丙", "bio").verdict == "allow" and after.check("丁戊己庚", "bio").verdict == "block"


@pytest.mark.parametrize("text,message", [
    ('[[group]]\ncategory = "pets"\nverdict = "block"\nterms = ["猫"]\n', "unknown category 'pets'"),
    ('[[group]]\ncategory = "vulgar"\nverdict = "maybe"\nterms = ["猫"]\n', "unknown verdict 'maybe'"),
    ('[[group]]\ncategory = "vulgar"\nverdicts = { avatar = "block" }\nterms = ["猫"]\n', "unknown field 'avatar'"),
    ('[[group]]\ncategory = "vulgar"\nverdict = "block"\ncontext = "nope"\nterms = ["猫"]\n', "unknown context 'nope'"),
    ('[[group]]\ncategory = "vulgar"\nverdict = "block"\nterms = [""]\n', "terms must be a list"),
    ('[chars]\n"ab" = "c"\n', "must map one character to one"),
    ('[[group]\n', "not a UTF-8 TOML file"),
])
def test_a_bad_file_is_refused_naming_the_file_and_the_value(tmp_path, text, message):
    write(tmp_path / "bad.toml", text)
    with pytest.raises(LexiconError, match="bad.toml") as raised:
        load([tmp_path])
    assert message in str(raised.value)


def test_context_terms_hit_only_with_a_word_of_their_context(tmp_path):
    write(tmp_path / "ctx.toml", '''
[contexts]
claim = ["总代理"]

[[group]]
category = "advertising"
verdict = "block"
context = "claim"
terms = ["甲品牌"]
''')
    engine = Engine(load([tmp_path]))
    assert engine.check("甲品牌爱好者", "bio").verdict == "allow"
    assert engine.check("甲品牌 总代理", "bio").verdict == "block"
