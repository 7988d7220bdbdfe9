"""The moderation engine (issue 17): every rule with the evasions it must see through, and the names and
texts it must let pass."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passport.moderation.engine import Engine, engine_for
from passport.moderation.lexicon import BUNDLED, load


@pytest.fixture(scope="module")
def engine() -> Engine:
    return engine_for()


def verdict(engine: Engine, text: str, field: str = "nickname") -> str:
    return engine.check(text, field).verdict


def categories(engine: Engine, text: str, field: str = "nickname") -> set[str]:
    return {hit.category for hit in engine.check(text, field).hits}


# --- the examples ----------------------------------------------------------------------------

def test_central_government_customer_service_is_refused_as_impersonation(engine):
    decision = engine.check("中央人民政府官方客服", "nickname")
    assert decision.verdict == "block" and decision.category == "impersonation"


def test_bio_with_wechat_fake_invoices_gambling_and_a_link_is_refused(engine):
    decision = engine.check("加微信…代开发票 赌博 http://…", "bio")
    assert decision.verdict == "block"
    assert {"illegal_services", "gambling", "advertising"} <= {hit.category for hit in decision.hits}
    assert any(hit.rule == "pattern:url" for hit in decision.hits)


def test_registering_as_the_ministry_of_state_security_is_refused(engine):
    assert verdict(engine, "国家安全部 官方") == "block"


# --- impersonation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["国务院", "工信部", "工业和信息化部", "北京市公安局", "朝阳区公安分局",
                                  "海淀派出所", "派出所",
                                  "中国人民解放军", "武警部队", "最高人民法院", "杭州市人民检察院", "上海市委"])
def test_state_party_and_military_organs_are_refused_as_a_nickname(engine, name):
    assert verdict(engine, name) == "block"
    assert "impersonation" in categories(engine, name)


@pytest.mark.parametrize("name", ["中華人民共和國國務院", "国 务 院", "国\u200b务\u200d院", "国　务　院",
                                  "國·務·院", "国💥务💥院",
                                  "ＣＣＴＶ官方", "公 安 局"])
def test_organs_are_seen_through_traditional_script_spacing_zero_width_and_full_width(engine, name):
    assert verdict(engine, name) == "block"


def test_organ_names_for_an_organisation_go_to_review_not_refusal(engine):
    assert verdict(engine, "北京市公安局", "organization_name") == "review"


def test_brand_is_fine_alone_but_not_with_official_words(engine):
    assert verdict(engine, "淘宝店主小王") == "allow"
    assert verdict(engine, "淘宝官方客服") == "block"
    assert verdict(engine, "新华社记者李明") == "block"
    assert verdict(engine, "华为认证工程师") == "block"
    assert verdict(engine, "我在华为上班", "bio") == "allow"


def test_organ_in_a_bio_is_held_only_when_claimed(engine):
    assert verdict(engine, "在派出所门口开了家面馆", "bio") == "allow"
    assert verdict(engine, "派出所官方认证账号", "bio") == "review"


# --- contact details ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["电话13812345678", "电话 138 1234 5678", "电话１３８１２３４５６７８",
                                  "电话138-1234-5678",
                                  "一三八一二三四五六七八", "+86 13812345678", "座机010-62345678", "400-800-1234"])
def test_phone_numbers_in_every_spelling_are_refused(engine, text):
    decision = engine.check(text, "bio")
    assert decision.verdict == "block" and decision.category == "advertising"


@pytest.mark.parametrize("text", ["QQ：12345678", "Q Q 12345678", "扣扣 12345678", "ｑｑ号１２３４５６",
                                  "企鹅号123456",
                                  "qq群 987654321"])
def test_qq_numbers_after_a_qq_marker_are_refused(engine, text):
    decision = engine.check(text, "bio")
    assert decision.verdict == "block"
    assert any(hit.rule == "pattern:qq" for hit in decision.hits)


@pytest.mark.parametrize("text", ["微信 abc123456", "薇信：abc123456", "威信号 abc123456", "VX abc_123456",
                                  "V❤：zhang_888",
                                  "v♥ zhang888a", "微\u200b信 abc123456", "weixin: abc123456"])
def test_wechat_ids_after_a_wechat_marker_are_refused(engine, text):
    decision = engine.check(text, "bio")
    assert decision.verdict == "block"
    assert any(hit.rule == "pattern:wechat" for hit in decision.hits)


@pytest.mark.parametrize("text", ["http://example.com", "https://a.b", "www.example.com",
                                  "ｗｗｗ．ｅｘａｍｐｌｅ．ｃｏｍ",
                                  "example。com", "example点com", "e x a m p l e . c n", "a.b@example.org",
                                  "ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ"])
def test_urls_domains_and_emails_are_refused_also_full_width(engine, text):
    assert verdict(engine, text, "bio") == "block"


def test_contact_words_without_a_number_go_to_review(engine):
    decision = engine.check("想学摄影的加微信", "bio")
    assert decision.verdict == "review" and decision.category == "advertising"
    assert verdict(engine, "加薇信聊聊", "bio") == "review"


def test_a_long_run_of_digits_goes_to_review(engine):
    assert verdict(engine, "找我 987654321", "bio") == "review"


# --- strict review -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["中国好声音", "中國好聲音", "中华小当家", "中華小當家", "中央厨房", "全国冠军",
                                  "国家队球迷",
                                  "國家隊球迷", "中 国 好 声 音", "☭", "🇨🇳小明"])
def test_state_names_and_symbols_in_a_name_go_to_strict_review(engine, name):
    decision = engine.check(name, "nickname")
    assert decision.verdict == "review" and decision.category == "strict_review"


def test_strict_terms_are_not_held_in_a_bio(engine):
    assert verdict(engine, "热爱中国传统文化", "bio") == "allow"


def test_exemptions_drop_the_strict_hit_inside_them(engine):
    assert verdict(engine, "中央空调安装师傅") == "allow"
    assert verdict(engine, "中央空调官方") == "review"  # 官方 still holds it


# --- evasions of the prohibited categories ----------------------------------------------------------

@pytest.mark.parametrize("text,category", [
    ("网上赌博", "gambling"), ("網上賭博", "gambling"), ("du博平台", "gambling"), ("菠菜网", "gambling"),
    ("ＢＡＣＣＡＲＡＴ百家乐", "gambling"), ("裸 聊", "pornography"), ("涩情直播", "pornography"),
    ("代開發票", "illegal_services"), ("代开发p", "illegal_services"), ("法\u200c轮\u200c功", "cults_superstition"),
])
def test_prohibited_words_through_script_spacing_and_homophones(engine, text, category):
    decision = engine.check(text, "bio")
    assert decision.verdict == "block" and category in {hit.category for hit in decision.hits}


def test_cyrillic_look_alikes_are_latin(engine):
    assert verdict(engine, "саsinо", "bio") == "block"  # с, а and о are Cyrillic


# --- what must pass ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["阿卜杜·热合曼", "Zoë Müller", "公安题材小说爱好者", "警察故事影迷", "微笑的信使",
                                  "微风中的信", "2008奥运志愿者", "生于1990年", "1998-2024", "威信很高的老师",
                                      "Ahmed O'Brien",
                                  "李 雷", "小明 (Tom)", "开发票据系统的程序员", "反洗钱专员", "QQ 爱好者",
                                      "微信读书爱好者"])
def test_ordinary_names_and_texts_pass(engine, text):
    for field in ("nickname", "bio"):
        decision = engine.check(text, field)
        assert decision.verdict == "allow", (field, decision.hits)


# --- explanations -------------------------------------------------------------------------------------

def test_hits_point_at_the_original_characters(engine):
    text = "我是国\u200b务 院的"
    decision = engine.check(text, "nickname")
    organ = next(hit for hit in decision.hits if hit.rule == "impersonation.toml:国务院")
    assert text[organ.start:organ.end] == "国\u200b务 院"
    assert decision.normalized == "我是国务院的"


def test_the_decision_lists_the_heaviest_hits_first(engine):
    decision = engine.check("中国国务院", "nickname")
    assert [hit.verdict for hit in decision.hits] == sorted((h.verdict for h in decision.hits),
                                                           key=["block", "review"].index)


def test_unknown_field_is_a_programming_error(engine):
    with pytest.raises(ValueError, match="avatar"):
        engine.check("x", "avatar")


def test_empty_text_is_allowed(engine):
    assert engine.check("", "bio").verdict == "allow"


@given(st.text(max_size=60))
def test_any_text_gets_a_verdict_and_spans_inside_it(text):
    decision = engine_for().check(text, "bio")
    assert decision.verdict in ("allow", "review", "block")
    for hit in decision.hits:
        assert 0 <= hit.start < hit.end <= len(text)


def test_the_engine_is_built_once_per_lexicon_version(tmp_path):
    first = engine_for(tmp_path)
    assert engine_for(tmp_path) is first
    assert first.version == load([BUNDLED, tmp_path]).version
